"""Precision policies for training: float32, mixed float16 (with loss scaling) and mixed bfloat16.

The one idea: mixed precision keeps two copies of every weight. The optimizer updates float32
*master* weights; each forward reads a 16-bit copy made by a parameter transform
(``Module.add_param_transform``), so activations, and the gradients flowing back through them, are
16-bit. The cast's backward turns the 16-bit weight gradient back into float32 for the master
Parameter, so small updates are not lost to 16-bit rounding (Micikevicius et al. 2018). Reductions
that need the range or precision stay in float32 inside the ops: softmax, the losses and batch-norm
statistics; batch-norm weights are not cast at all (as PyTorch's autocast does).

Policies (``get_policy(name)``):

- ``float32``: the baseline; a plain backward and step.
- ``mixed_float16``: real float16 arrays for weights, inputs and activations, plus dynamic loss
  scaling (``tinyeff/loss_scale.py``) because float16's exponent range is small. NOTE: NumPy has no
  float16 BLAS, so float16 GEMMs run NumPy's generic loop (measured here: a 7744x288x64 GEMM takes
  about 40x as long as in float32, a seed-CNN training step about 8x). What float16 buys here is
  memory: the arrays saved for backward take about 55-60% of the float32 bytes. It does not buy speed.
- ``mixed_bfloat16``: "bfloat16 storage, float32 compute". Values are rounded to bfloat16
  (round-to-nearest-even, bit level, ``round_to_bfloat16``) at the weights, the input and every
  Conv2d/Linear output, but kept in float32 arrays, because NumPy matmul on ml_dtypes.bfloat16 is
  not a fast path. This reproduces bfloat16's numerics (8-bit mantissa, float32 range, so no loss
  scaling) at float32 speed, and saves no memory; the report says so.

Every policy measures the bytes of the arrays the graph saves for backward (``saved_bytes``) on
each step and reports the peak as ``activation_bytes``.

What this file leaves out: 16-bit kernels (none of the fast tiers take 16-bit input) and
per-layer policies (every Conv2d and Linear gets the same precision).
"""
import numpy as np

from tinyeff import nn, ops
from tinyeff.loss_scale import DynamicLossScaler
from tinyeff.tensor import Tensor, make_result

TRANSFORM_KEY = "precision"


# --- bfloat16 rounding ------------------------------------------------------------------------------
def round_to_bfloat16(x):
    """Round float32 values to the nearest bfloat16 (ties to even); return them as float32.

    bfloat16 is the top 16 bits of a float32 (sign, 8-bit exponent, 7-bit mantissa). Adding
    0x7FFF plus the lowest kept bit to the float32 bit pattern, then clearing the low 16 bits,
    rounds to nearest with ties to even; a carry out of the mantissa correctly bumps the exponent
    (and the largest finite values round up to inf, as they should). NaN is passed through
    unchanged because adding to its bit pattern could turn it into inf.

    Args:
        x: array-like of float32 (other float dtypes are converted to float32 first).
    Returns:
        float32 ndarray of the same shape whose values are exactly representable in bfloat16.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)            # uint64: the addition cannot wrap
    lsb = (bits >> 16) & 1
    rounded = ((bits + 0x7FFF + lsb) & 0xFFFF0000).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), x, rounded)


def bf16_round(t):
    """Differentiable rounding to bfloat16 values: the gradient is rounded too (it is stored in bf16)."""
    return make_result(round_to_bfloat16(t.data), (t,), lambda g: (round_to_bfloat16(g),), "bf16_round")


# --- measuring what backward keeps --------------------------------------------------------------------
def saved_bytes(loss):
    """Bytes of the arrays the graph of ``loss`` holds for its backward pass (activations).

    Walks every node reachable from ``loss`` and the closures of their ``backward`` functions, and
    adds up each distinct array once (views count as their base array). Parameters (the master
    weights) are model state, not activations, and are left out; 16-bit weight copies made by a
    precision transform are counted, since backward keeps them. Call it before ``backward()``,
    which frees the graph.
    """
    arrays, seen = {}, set()
    stack = [loss]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            base = obj
            while isinstance(base.base, np.ndarray):
                base = base.base
            arrays[id(base)] = base.nbytes
        elif isinstance(obj, Tensor):
            if not isinstance(obj, nn.Parameter):
                stack.append(obj.data)
            if obj._backward is not None:
                stack.append(obj._backward)
            stack.extend(obj._parents)
        elif callable(obj) and getattr(obj, "__closure__", None):
            stack.extend(cell.cell_contents for cell in obj.__closure__ if _cell_filled(cell))
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
    return int(sum(arrays.values()))


def _cell_filled(cell):
    try:
        cell.cell_contents
    except ValueError:        # a closure variable not yet assigned
        return False
    return True


# --- policies -----------------------------------------------------------------------------------------
class Float32Policy:
    """float32 everywhere: ``loss.backward(); optimizer.step()``, plus the activation-memory measure."""
    name = "float32"
    input_dtype = np.float32

    def __init__(self):
        self.activation_bytes = 0
        self.steps = 0

    def prepare(self, model):
        """Attach whatever the policy needs to ``model``; float32 needs nothing."""

    def release(self, model):
        """Undo ``prepare``: remove the policy's transforms and hooks from ``model``."""

    def forward_input(self, x):
        """The batch ``x`` (ndarray, N x C x H x W) as the Tensor the model's first layer reads."""
        return Tensor(np.asarray(x, dtype=self.input_dtype))

    def _measure(self, loss):
        self.activation_bytes = max(self.activation_bytes, saved_bytes(loss))
        self.steps += 1

    def backward_and_step(self, loss, optimizer):
        """Backpropagate ``loss`` and update; return True if the optimizer stepped."""
        self._measure(loss)
        loss.backward()
        optimizer.step()
        return True

    def report(self):
        return {"precision": self.name, "activation_bytes": self.activation_bytes, "steps": self.steps,
                "skipped_steps": 0}


class _MixedPolicy(Float32Policy):
    """Shared by the 16-bit policies: one weight transform on every Conv2d/Linear (not batch norm)."""

    def prepare(self, model):
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                continue   # BN weights stay float32; the op computes its statistics in float32 anyway
            for name, p in module._parameters.items():
                if p is not None:
                    module.add_param_transform(name, TRANSFORM_KEY, self._weight_transform(module))

    def release(self, model):
        for module in model.modules():
            for name in list(module._param_transforms):
                module.remove_param_transform(name, TRANSFORM_KEY)

    def _weight_transform(self, module):
        # NOTE: only in training mode. Evaluation (train.evaluate feeds float32 batches) then runs
        # on the float32 master weights, which are also what gets saved.
        def transform(p):
            return self._to_16bit(p) if module.training else p
        return transform


class MixedFloat16Policy(_MixedPolicy):
    """float16 weights, inputs and activations; float32 master weights; dynamic loss scaling.

    Args:
        scaler: a ``DynamicLossScaler`` (default: PyTorch's settings, initial scale 2**16).
    """
    name = "mixed_float16"
    input_dtype = np.float16

    def __init__(self, scaler=None):
        super().__init__()
        self.scaler = scaler or DynamicLossScaler()

    def _to_16bit(self, p):
        return ops.cast(p, np.float16)

    def backward_and_step(self, loss, optimizer):
        """Scaled backward, unscale the float32 master gradients, then step or skip on inf/NaN."""
        self._measure(loss)
        # an overflow to inf in the scaled float16 gradients is expected and handled (the step is
        # skipped and the scale halved below), so NumPy's overflow warning would only alarm
        with np.errstate(over="ignore", invalid="ignore"):
            loss.backward(np.asarray(self.scaler.scale, dtype=loss.dtype))   # d(S * loss) = S
        finite = self.scaler.unscale_(optimizer.params)
        if finite:
            optimizer.step()
        else:
            optimizer.zero_grad()   # the overflowed gradients must not leak into the next step
        self.scaler.update(found_inf=not finite)
        return finite

    def report(self):
        out = super().report()
        out.update(skipped_steps=self.scaler.skipped_steps, loss_scale=self.scaler.scale,
                   storage="float16 arrays", compute="float16 (NumPy reference kernels)")
        return out


class MixedBFloat16Policy(_MixedPolicy):
    """bfloat16 numerics emulated in float32 arrays ("bf16 storage, fp32 compute"); no loss scaling.

    Weights, the input and each Conv2d/Linear output are rounded to bfloat16 values in the forward
    pass; weight gradients are rounded on their way back to the float32 masters. Gradients between
    layers stay float32. Memory and speed match float32; only the rounding is bfloat16's.
    """
    name = "mixed_bfloat16"

    def __init__(self):
        super().__init__()
        self._handles = {}

    def _to_16bit(self, p):
        return bf16_round(p)

    def prepare(self, model):
        super().prepare(model)
        self.release_hooks()
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                self._handles[id(module)] = module.register_forward_hook(_round_output)

    def release_hooks(self):
        for handle in self._handles.values():
            handle.remove()
        self._handles = {}

    def release(self, model):
        super().release(model)
        self.release_hooks()

    def forward_input(self, x):
        return Tensor(round_to_bfloat16(x))

    def report(self):
        out = super().report()
        out.update(storage="float32 arrays holding bfloat16 values (emulated, no memory saved)",
                   compute="float32")
        return out


def _round_output(module, inputs, output):
    # Rounds in place before any consumer reads ``output.data``; Conv2d and Linear backward never
    # read their own output, so the saved graph stays consistent.
    if module.training:
        output.data = round_to_bfloat16(output.data)


POLICIES = {"float32": Float32Policy, "mixed_float16": MixedFloat16Policy, "mixed_bfloat16": MixedBFloat16Policy}


def get_policy(name, **kwargs):
    """A new precision policy by name: "float32", "mixed_float16" or "mixed_bfloat16".

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    if name is None:
        name = "float32"
    if name not in POLICIES:
        raise ValueError(f"unknown precision {name!r}; choose one of: {', '.join(POLICIES)}")
    return POLICIES[name](**kwargs)


def names():
    return list(POLICIES)
