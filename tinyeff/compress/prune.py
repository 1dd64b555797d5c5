"""Attaching pruning masks to a model: ``prune``, ``remove_pruning``, ``sparsity_report``, saving.

The one idea: a pruned layer keeps its dense ``weight`` plus a ``weight_mask`` buffer (bool, saved
in the state dict), and a parameter transform ``w -> w * mask`` that the layer reads through
``param("weight")``. The forward pass therefore sees only kept weights, and since the mask is a
constant factor the gradient of every pruned weight is exactly 0. At prune time the pruned entries
of ``weight.data`` (and of the optimizer's momentum / Adam moments, if an optimizer is passed) are
set to 0 too, so SGD with momentum and weight decay (``g = 0 + wd * 0``) and Adam (``m = v = 0``)
never move them: pruned weights stay exactly zero for the rest of training.

Composition: a second ``prune`` only removes weights that are still kept, and a fractional
``amount`` is relative to the still-kept weights (PyTorch's convention: 0.5 then 0.5 leaves 25%).
An int ``amount`` is an absolute count of additional weights; the schedules use it to hit an exact
target sparsity (``prune_to_sparsity``).

Structured ("channel") pruning also masks the layer's bias and the BatchNorm that follows it (the
next BatchNorm child of the same parent, in definition order), so a pruned filter's activation is
exactly 0 and ``thinning.thin`` can delete it without changing any output.

What this file leaves out: the mask math (``masks.py``), schedules (``schedule.py``) and physically
removing channels (``thinning.py``).
"""
import warnings
import zlib

import numpy as np

from tinyeff import io
from tinyeff.nn import mask as nn_mask
from tinyeff.nn.surgery import join_name, sequence_stages
from tinyeff.compress import masks as M
from tinyeff.compress.channels import PRUNABLE, thinning_plan

METHODS = ("magnitude", "random", "channel", "nm", "global")


# --- small queries ------------------------------------------------------------------------------------
def prunable_layers(model):
    """dict qualified name -> Conv2d/Linear module, in definition order ("" if ``model`` is one)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}


def get_mask(module, name="weight"):
    """The bool keep mask on ``module.<name>``, or None if it is not pruned."""
    mask = getattr(module, f"{name}_mask", None)
    return None if mask is None else np.asarray(mask, dtype=bool)


def is_pruned(module, name="weight"):
    return get_mask(module, name) is not None


def following_batchnorm(model):
    """dict layer name -> name of the BatchNorm right after it among its parent's children."""
    return {join_name(parent_name, stage.layer[0]): join_name(parent_name, stage.bn[0])
            for parent_name, parent in model.named_modules()
            for stage in sequence_stages(parent) if stage.bn is not None}


# --- attaching and removing -------------------------------------------------------------------------
def attach_mask(module, keep, name="weight", optimizer=None):
    """Attach (or replace) the keep mask on ``module.<name>``; zero the pruned data (and optimizer state)."""
    param = module._parameters.get(name)
    keep = np.asarray(keep, dtype=bool)
    if param is None or keep.shape != param.data.shape:
        raise ValueError(f"prune: mask shape {keep.shape} does not fit {type(module).__name__}.{name}")
    nn_mask.attach(module, name, keep)
    param.data *= keep                       # pruned weights become exact zeros now
    if optimizer is not None:
        zero_optimizer_state(optimizer, [(param, keep)])


def zero_optimizer_state(optimizer, pairs):
    """Zero the optimizer's per-weight state (momentum, Adam m and v) where each mask prunes."""
    index = {id(p): i for i, p in enumerate(optimizer.params)}
    for param, keep in pairs:
        i = index.get(id(param))
        if i is None:
            continue
        for value in optimizer.state[i].values():
            if isinstance(value, np.ndarray) and value.shape == keep.shape:
                value *= keep


def model_masks(model):
    """List of (Parameter, keep mask) for every masked parameter in ``model``."""
    pairs = []
    for _, module in model.named_modules():
        for name, param in module._parameters.items():
            mask = get_mask(module, name) if param is not None else None
            if mask is not None:
                pairs.append((param, mask))
    return pairs


def remove_pruning(model, layers=None):
    """Make pruning permanent: multiply each weight by its mask and drop the mask and transform.

    Args:
        model: a model or a single layer. layers: qualified names to unprune (default: all).
    """
    modules = dict(model.named_modules())
    names = list(modules) if layers is None else _check_layers(model, layers, modules)
    for name in names:
        module = modules[name]
        for pname, param in list(module._parameters.items()):
            keep = get_mask(module, pname) if param is not None else None
            if keep is None:
                continue
            param.data *= keep
            nn_mask.detach(module, pname)
    return model


def _check_layers(model, layers, modules=None):
    modules = modules if modules is not None else dict(model.named_modules())
    names = [layers] if isinstance(layers, str) else list(layers)
    missing = [n for n in names if n not in modules]
    if missing:
        known = ", ".join(prunable_layers(model)) or "(none)"
        raise ValueError(f"prune: no layer named {missing}; prunable layers are: {known}")
    return names


def _targets(model, layers, method, m):
    """name -> module to prune, checked. Raises ValueError (nothing changed yet)."""
    if isinstance(model, PRUNABLE):
        return {"": model}
    candidates = prunable_layers(model)
    if layers is not None:
        names = _check_layers(model, layers)
        bad = [n for n in names if n not in candidates]
        if bad:
            raise ValueError(f"prune: layers {bad} are not Conv2d or Linear; prunable layers are: "
                             f"{', '.join(candidates)}")
        return {n: candidates[n] for n in names}
    if method == "channel":   # only filters that thinning can remove (never the classifier's outputs)
        return {p[0]: candidates[p[0]] for p in thinning_plan(model)}
    if method == "nm":
        skipped = [n for n, mod in candidates.items() if mod.weight.data.shape[1] % m]
        if skipped:
            warnings.warn(f"prune: N:M leaves out layers whose input dimension is not divisible by "
                          f"m={m}: {skipped}", stacklevel=3)
        return {n: mod for n, mod in candidates.items() if n not in skipped}
    return candidates


def compute_masks(model, amount, method="magnitude", layers=None, *, n=2, m=4, norm=1, seed=0):
    """The new keep masks ``prune`` would attach, as dict name -> mask, without changing the model."""
    if method not in METHODS:
        raise ValueError(f"prune: method={method!r} is not one of {METHODS}")
    targets = _targets(model, layers, method, m)
    current = {k: mod.weight.data for k, mod in targets.items()}
    old = {k: get_mask(mod) for k, mod in targets.items()}
    if method == "nm":
        if amount is not None and abs(float(amount) - (1 - n / m)) > 1e-9:
            raise ValueError(f"prune: method='nm' with n={n}, m={m} gives sparsity {1 - n / m:g}; "
                             f"amount={amount} disagrees (pass amount=None)")
        return {k: M.nm_mask(w, n, m, old[k]) for k, w in current.items()}
    if amount is None:
        raise ValueError(f"prune: method={method!r} needs amount (a fraction in [0, 1] or an int count)")
    if method == "global":
        return M.global_magnitude_masks(current, amount, old)
    fn = {"magnitude": lambda w, k: M.magnitude_mask(w, amount, old[k]),
          "random": lambda w, k: M.random_mask(w, amount, old[k], seed=seed + zlib.crc32(k.encode())),
          "channel": lambda w, k: M.channel_mask(w, amount, 0, norm, old[k])}[method]
    return {k: fn(w, k) for k, w in current.items()}


def prune(model, amount=None, method="magnitude", layers=None, *, n=2, m=4, norm=1, seed=0,
          optimizer=None):
    """Prune ``model`` (or one layer) in place and return it.

    Args:
        model: a model or a single Conv2d/Linear.
        amount: fraction in [0, 1] of the still-kept weights (or channels, for "channel") to prune
            in each layer ("global": of all chosen layers together), or an int count. None for "nm".
        method: "magnitude" (L1, per layer), "global" (magnitude, one threshold for all layers),
            "random" (control, seeded), "channel" (whole filters by L1/L2 norm, ``norm``), or "nm"
            (keep ``n`` of every ``m`` along the input dimension).
        layers: qualified layer names (default: every Conv2d and Linear; for "nm", those whose input
            dimension ``m`` divides; for "channel", the layers ``thinning.thinning_plan`` can thin,
            so the classifier and a ResNet's residual channels are left alone; see
            ``thinning.prune_channel_groups`` for those).
        optimizer: if given, its momentum / moment state is zeroed at the pruned positions.

    Raises:
        ValueError: bad ``amount`` or ``method``, unknown layer, N:M shape mismatch. The model is
            unchanged: every mask is computed before any is attached.
    """
    new = compute_masks(model, amount, method, layers, n=n, m=m, norm=norm, seed=seed)
    modules = dict(model.named_modules())
    bns = following_batchnorm(model) if method == "channel" else {}
    for name, keep in new.items():
        module = modules[name]
        attach_mask(module, keep, optimizer=optimizer)
        if method == "channel":
            _mask_channel_companions(module, keep, modules.get(bns.get(name)), optimizer)
    return model


def _mask_channel_companions(module, keep, bn, optimizer):
    """Mask the bias and the following BatchNorm of every pruned output channel."""
    alive = keep.reshape(keep.shape[0], -1).any(axis=1)          # (OC,)
    if module.bias is not None:
        attach_mask(module, alive, "bias", optimizer)
    if bn is not None:
        attach_mask(bn, alive, "weight", optimizer)
        attach_mask(bn, alive, "bias", optimizer)


def prune_to_sparsity(model, sparsity, method="magnitude", layers=None, optimizer=None, **kwargs):
    """Prune until the chosen layers reach ``sparsity`` (per layer, or overall for "global").

    Already-pruned weights count towards the target, so calling this with a rising ``sparsity``
    (what the schedules do) only ever removes more. For "channel", ``sparsity`` is the fraction
    of filters removed in each layer.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"prune: sparsity={sparsity} must be in [0, 1]")
    targets = _targets(model, layers, method, kwargs.get("m", 4))
    if method == "nm":
        return prune(model, None, "nm", layers, optimizer=optimizer, **kwargs)
    if method == "global":
        total = sum(t.weight.data.size for t in targets.values())
        pruned = sum(_pruned_count(t) for t in targets.values())
        extra = max(0, int(round(sparsity * total)) - pruned)
        return prune(model, extra, "global", layers, optimizer=optimizer, **kwargs)
    for name, t in targets.items():
        if method == "channel":
            keep = get_mask(t)
            alive = t.weight.data.shape[0] if keep is None else int(keep.reshape(len(keep), -1).any(1).sum())
            extra = max(0, int(round(sparsity * t.weight.data.shape[0])) - (t.weight.data.shape[0] - alive))
        else:
            extra = max(0, int(round(sparsity * t.weight.data.size)) - _pruned_count(t))
        prune(model, extra, method, None if name == "" else [name], optimizer=optimizer, **kwargs)
    return model


def _pruned_count(module):
    mask = get_mask(module)
    return 0 if mask is None else int(mask.size - mask.sum())


# --- reporting ---------------------------------------------------------------------------------------
def sparsity_report(model):
    """Zeros and parameters of every Conv2d/Linear weight (as the forward pass sees it), and totals.

    Returns:
        dict with ``layers``: list of {name, type, shape, zeros, params, sparsity, pruned (has a
        mask)}, ``total``: {zeros, params, sparsity} over those weights, and ``all_params``:
        {zeros, params, sparsity} over every parameter of the model (biases and BatchNorm too).
    """
    rows, zeros, params = [], 0, 0
    for name, module in prunable_layers(model).items():
        w = module.param("weight").data
        z = int(np.count_nonzero(w == 0))
        rows.append({"name": name, "type": type(module).__name__, "shape": list(w.shape), "zeros": z,
                     "params": int(w.size), "sparsity": z / max(1, w.size), "pruned": is_pruned(module)})
        zeros, params = zeros + z, params + int(w.size)
    all_zeros = all_params = 0
    for _, module in model.named_modules():
        for pname, p in module._parameters.items():
            if p is not None:
                value = module.param(pname).data
                all_zeros += int(np.count_nonzero(value == 0))
                all_params += int(value.size)
    return {"layers": rows, "total": {"zeros": zeros, "params": params, "sparsity": zeros / max(1, params)},
            "all_params": {"zeros": all_zeros, "params": all_params,
                           "sparsity": all_zeros / max(1, all_params)}}


def format_report(report):
    """The sparsity report as a text table."""
    lines = [f"{'layer':<28}{'type':<8}{'params':>10}{'zeros':>10}{'sparsity':>10}"]
    for r in report["layers"]:
        lines.append(f"{r['name']:<28}{r['type']:<8}{r['params']:>10}{r['zeros']:>10}{r['sparsity']:>10.1%}")
    t = report["total"]
    lines.append(f"{'total (conv + linear)':<36}{t['params']:>10}{t['zeros']:>10}{t['sparsity']:>10.1%}")
    return "\n".join(lines)


# --- model files -------------------------------------------------------------------------------------
def save(model, path, **header_fields):
    """Save a pruned model (weights + masks) as kind="pruned"; ``tinyeff.io.load`` re-attaches the masks."""
    return io.save(model, path, kind="pruned", preprocess=getattr(model, "preprocess", None), **header_fields)


def load_pruned(header, arrays):
    """The ``io`` reader of kind "pruned": ``Module.load_state_dict`` re-attaches the masks."""
    return io.build_from_header(header, arrays, "pruned model")
