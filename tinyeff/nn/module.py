"""Module and Parameter: the containers layers and models are built from.

A Module owns parameters (trainable Tensors), buffers (arrays saved with the model but not trained,
such as BatchNorm's running statistics or a pruning mask) and child modules, all kept in definition
order so ``parameters()`` matches PyTorch. Three attach points let other parts of tinyeff change a
layer without rewriting it:

- forward hooks, ``fn(module, inputs, output)``, for per-layer accounting (FLOPs, time, energy);
- forward pre-hooks, ``fn(module, inputs)``;
- parameter transforms, ``fn(tensor) -> tensor``, applied by ``module.param(name)`` every forward:
  a pruning mask multiplies the weight (so the gradient is masked too), fake-quant rounds it for
  QAT, a precision policy casts it to float16. Layers read weights only through ``param()``.
"""
from collections import OrderedDict

import numpy as np

from tinyeff.nn import mask
from tinyeff.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module trains: ``requires_grad`` is True."""
    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)


class HookHandle:
    """Returned by ``register_*hook``; ``remove()`` detaches the hook."""

    def __init__(self, registry, key):
        self._registry, self._key = registry, key

    def remove(self):
        self._registry.pop(self._key, None)


class Module:
    """Base class of every layer and model. Subclasses define ``forward``; call the module to run it."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_param_transforms", OrderedDict())
        object.__setattr__(self, "training", True)

    # --- registration -----------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning {name!r}")
        if name in self._buffers and (value is None or isinstance(value, np.ndarray)):
            self.register_buffer(name, value)      # as in PyTorch: assigning an array updates the buffer
            return
        for table in (self._parameters, self._modules, self._buffers):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif value is None and name in ("bias", "weight"):
            self._parameters[name] = None
        object.__setattr__(self, name, value)

    def register_buffer(self, name, array):
        """Keep ``array`` (an ndarray, or None) with the model's state, untrained."""
        self._buffers[name] = None if array is None else np.asarray(array)
        object.__setattr__(self, name, self._buffers[name])

    def set_buffer(self, name, array):
        """Replace an existing buffer's array."""
        if name not in self._buffers:
            raise KeyError(f"{type(self).__name__} has no buffer {name!r}; use register_buffer")
        self.register_buffer(name, array)

    # --- parameter transforms ---------------------------------------------------------------------
    def add_param_transform(self, name, key, fn):
        """Apply ``fn`` to parameter ``name`` each time ``param(name)`` is read; ``key`` names it."""
        if name not in self._parameters or self._parameters[name] is None:
            raise ValueError(f"{type(self).__name__} has no parameter {name!r}; "
                             f"it has {[n for n, p in self._parameters.items() if p is not None]}")
        self._param_transforms.setdefault(name, OrderedDict())[key] = fn

    def remove_param_transform(self, name, key):
        transforms = self._param_transforms.get(name, {})
        transforms.pop(key, None)
        if not transforms:
            self._param_transforms.pop(name, None)

    def param_transforms(self, name):
        """The (key -> fn) transforms on parameter ``name``, in application order."""
        return dict(self._param_transforms.get(name, {}))

    def param(self, name):
        """Parameter ``name`` as the forward pass should see it: every transform applied in order."""
        value = self._parameters[name]
        transforms = self._param_transforms.get(name)
        if transforms:
            for fn in transforms.values():
                value = fn(value)
        return value

    # --- traversal --------------------------------------------------------------------------------
    def named_modules(self, prefix=""):
        """Yield (qualified name, module) for this module and every descendant, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix=""):
        """Yield (qualified name, Parameter) in definition order, each parameter once."""
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        for mod_name, module in self.named_modules():
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def get_submodule(self, target):
        """The module at dotted path ``target`` ("" is self); KeyError names what exists."""
        module = self
        for part in filter(None, target.split(".")):
            if part not in module._modules:
                known = [n for n, _ in self.named_modules() if n]
                raise KeyError(f"no layer named {target!r}; layers are: {', '.join(known)}")
            module = module._modules[part]
        return module

    # --- modes ------------------------------------------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    # --- state ------------------------------------------------------------------------------------
    def state_dict(self):
        """Ordered name -> ndarray for every parameter and buffer (copies, safe to keep)."""
        state = OrderedDict((n, p.data.copy()) for n, p in self.named_parameters())
        state.update((n, np.array(b, copy=True)) for n, b in self.named_buffers())
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays from ``state`` into this module's parameters and buffers.

        A ``<layer>.<param>_mask`` array the model has no buffer for yet is a pruning mask: it is
        attached with its transform (``nn.mask``), so masks survive any save/load round trip.

        Raises:
            KeyError: a name is missing or unexpected (with ``strict``).
            ValueError: an array's shape differs; the message names the tensor. Nothing is changed.
        """
        targets = OrderedDict((n, ("param", p)) for n, p in self.named_parameters())
        for mod_name, module in self.named_modules():
            for name, b in module._buffers.items():
                if b is not None:
                    targets[f"{mod_name}.{name}" if mod_name else name] = ("buffer", (module, name))
        new_masks = self._new_masks(state, targets)
        missing = [n for n in targets if n not in state]
        unexpected = [n for n in state if n not in targets and n not in new_masks]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing {missing or 'nothing'}, unexpected {unexpected or 'nothing'}")
        expected_shapes = {n: (t.data if k == "param" else getattr(t[0], t[1])).shape for n, (k, t) in targets.items()}
        expected_shapes.update({n: m._parameters[p].data.shape for n, (m, p) in new_masks.items()})
        for name, shape in expected_shapes.items():
            if name in state and np.shape(state[name]) != shape:
                raise ValueError(f"load_state_dict: tensor {name!r} has shape {np.shape(state[name])}, "
                                 f"the model expects {shape}")
        for name, (module, pname) in new_masks.items():
            mask.attach(module, pname, state[name])
        for name, (kind, target) in targets.items():
            if name not in state:
                continue
            if kind == "param":
                target.data = np.array(state[name], dtype=target.data.dtype)
            else:
                module, bname = target
                module.set_buffer(bname, np.array(state[name], dtype=getattr(module, bname).dtype))

    def _new_masks(self, state, targets):
        """name -> (module, param name) for the mask arrays in ``state`` this model does not hold yet."""
        modules = dict(self.named_modules())
        out = {}
        for key in state:
            if key in targets:
                continue
            layer, _, leaf = key.rpartition(".")
            module = modules.get(layer)
            pname = mask.mask_target(module, leaf) if module is not None else None
            if pname is not None:
                out[key] = (module, pname)
        return out

    # --- hooks and calling ------------------------------------------------------------------------
    def register_forward_hook(self, fn):
        """Call ``fn(module, inputs, output)`` after every forward; returns a handle with ``remove()``."""
        key = object()
        self._forward_hooks[key] = fn
        return HookHandle(self._forward_hooks, key)

    def register_forward_pre_hook(self, fn):
        """Call ``fn(module, inputs)`` before every forward; returns a handle with ``remove()``."""
        key = object()
        self._forward_pre_hooks[key] = fn
        return HookHandle(self._forward_pre_hooks, key)

    def forward(self, *inputs):
        raise TypeError(f"{type(self).__name__} does not define forward(); subclasses of Module must")

    def __call__(self, *inputs):
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*inputs)         # the common case, kept short: it runs per layer
        for hook in list(self._forward_pre_hooks.values()):
            hook(self, inputs)
        output = self.forward(*inputs)
        for hook in list(self._forward_hooks.values()):
            hook(self, inputs, output)
        return output

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return lines[0] + (")" if len(lines) == 1 else "\n" + "\n".join(lines[1:]) + "\n)")
