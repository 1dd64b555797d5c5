"""Model files: ``.npz`` archives holding a JSON header and named arrays, read with allow_pickle=False.

The header (stored as a UTF-8 byte array under ``__header__``) says what the file is
(``kind``: "float" for a trained model, or one of the kinds in ``READERS``), the architecture
(``arch``: model name and builder arguments), the layer shapes of a thinned model (``thinned``) and
anything else worth keeping (training metrics, dataset).

Each non-float kind is read by the module that writes it. ``READERS`` names that module as a
string and it is imported on first use, so this file depends on none of them: compression and
quantization import io to save, never the other way round. Writing goes through ``tinyeff.fsio``
(a temporary file in the same directory, renamed into place only when complete), so an interrupted
save never leaves a half-written model behind.

Reading never trusts the file: ``tinyeff.npzfile`` checks every member's declared size against its
array header before inflating anything, the header must be a JSON object whose tensor shapes match
the arrays, and the architecture is first built without memory (``nn.init.shapes_only``) so a
header asking for an enormous model, or for tensors the file does not hold, is refused before any
weight is allocated. ``TINYEFF_MAX_MODEL_BYTES`` (default 1 GiB) bounds both.
"""
import importlib
import json
import os

import numpy as np

from tinyeff import fsio, npzfile
from tinyeff.errors import ModelFileError

FORMAT_VERSION = 1
# kind -> "module:function" rebuilding a model from (header, arrays)
READERS = {
    "pruned": "tinyeff.compress.prune:load_pruned",
    "thinned": "tinyeff.compress.thinning:load_thinned",
    "quantized": "tinyeff.quant.qio:load_quantized",
    "lowprec": "tinyeff.quant.lowprec:load_lowprec",
}
# the kinds that load as a float nn.Module (masks, smaller layers or 16-bit storage aside)
FLOAT_KINDS = ("float", "pruned", "thinned", "lowprec")
_LOADERS = {}


def register_loader(kind, fn):
    """Let ``load`` rebuild files of ``kind`` with ``fn(header, arrays) -> model`` (for plug-ins)."""
    _LOADERS[kind] = fn


def _reader(kind):
    if kind in _LOADERS:
        return _LOADERS[kind]
    if kind in READERS:
        module, _, name = READERS[kind].partition(":")
        return getattr(importlib.import_module(module), name)
    return None


MAX_HEADER_BYTES = 1 << 20
FIX = "re-save or re-train the model"


def atomic_savez(path, arrays):
    """Write ``arrays`` to ``path`` (.npz, compressed) through a temporary file and a rename."""
    return fsio.savez(path, arrays)


def _encode_header(header):
    return np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def write(path, header, arrays):
    """Write ``header`` and ``arrays`` (as ``read`` returns them) to ``path``; return the file size."""
    if "__header__" in arrays:
        raise ValueError("save: '__header__' is reserved and cannot name a tensor")
    atomic_savez(path, {"__header__": _encode_header(header), **arrays})
    return os.path.getsize(path)


def save(model, path, kind="float", arrays=None, **header_fields):
    """Save ``model`` (its ``arch`` and state dict, or ``arrays`` if given) to ``path``.

    Returns:
        The file size in bytes.
    """
    arch = getattr(model, "arch", None)
    for field in ("preprocess", "thinned"):           # what the architecture name alone does not say
        if field not in header_fields and getattr(model, field, None):
            header_fields[field] = getattr(model, field)
    if arch is None:
        raise ValueError("save: the model has no .arch record; build it with tinyeff.models.create(name, ...)")
    tensors = dict(model.state_dict() if arrays is None else arrays)
    header = {"format_version": FORMAT_VERSION, "kind": kind, "arch": arch,
              "tensors": {k: list(np.shape(v)) for k, v in tensors.items()}, **header_fields}
    return write(path, header, tensors)


def read(path):
    """Read a model file; return (header dict, dict of arrays).

    The header and the declared sizes are checked before any array is inflated (see the module
    docstring), so a small crafted file cannot make this use more memory than its header admits.

    Raises:
        ModelFileError: missing, not a regular file, not a tinyeff model file, corrupt or crafted
            (the message names the file, what is wrong and the fix).
    """
    path = os.fspath(path)
    if not os.path.lexists(path):
        raise ModelFileError(f"{path}: no such model file; train one with `tinyeff train ... --out DIR`")
    members = npzfile.inspect(path, "model file", FIX)
    if "__header__" not in members:
        raise ModelFileError(f"{path}: has no tinyeff header; it was not written by tinyeff.io.save")
    dtype, shape = members["__header__"]
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_HEADER_BYTES:
        raise ModelFileError(f"{path}: the header member is {dtype} {shape}, not a UTF-8 JSON text; {FIX}")
    header = parse_header(npzfile.read(path, ["__header__"], "model file", FIX)["__header__"], path)
    listed = header["tensors"]
    for name, want in listed.items():
        if name not in members:
            raise ModelFileError(f"{path}: tensors listed in the header are missing: {[name]}")
        if tuple(want) != members[name][1]:
            raise ModelFileError(f"{path}: tensor {name!r} is stored with shape {members[name][1]}, the header "
                                 f"lists {tuple(want)}; the file is corrupt or crafted; {FIX}")
    arrays = npzfile.read(path, [n for n in members if n != "__header__"], "model file", FIX)
    return header, arrays


def parse_header(raw, path):
    """The header dict from its uint8 bytes, with the fields every reader relies on checked."""
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: the header is corrupt ({exc}); {FIX}") from exc
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the header is a JSON {_json_type(header)}, expected an object with "
                             f"'kind', 'arch' and 'tensors'; the file was not written by tinyeff; {FIX}")
    tensors = header.setdefault("tensors", {})
    if not isinstance(tensors, dict) or not all(
            isinstance(v, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in v)
            for v in tensors.values()):
        raise ModelFileError(f"{path}: the header's 'tensors' must map names to shapes (lists of sizes); {FIX}")
    arch = header.get("arch")
    if arch is not None and not (isinstance(arch, dict) and isinstance(arch.get("name"), str)
                                 and isinstance(arch.get("kwargs", {}), dict)):
        raise ModelFileError(f"{path}: the header's 'arch' must be {{'name': str, 'kwargs': {{...}}}}, "
                             f"got {arch!r:.200}; {FIX}")
    if not isinstance(header.get("kind", "float"), str):
        raise ModelFileError(f"{path}: the header's 'kind' must be a string; {FIX}")
    return header


def _json_type(value):
    return {list: "list", str: "string", type(None): "null", bool: "boolean"}.get(type(value), "number")


def load(path, expect_kind=None):
    """Rebuild the model saved at ``path``.

    Args:
        expect_kind: if given, a kind ("float", "quantized", ...) or a tuple of kinds (e.g.
            ``FLOAT_KINDS``); files of another kind are refused.
    Raises:
        ModelFileError: truncated or corrupt file, unknown architecture, wrong kind, or a tensor of
            the wrong shape (the message names the tensor).
    """
    header, arrays = read(path)
    kind = header.get("kind", "float")
    if expect_kind is not None and kind not in ((expect_kind,) if isinstance(expect_kind, str) else expect_kind):
        wanted = expect_kind if isinstance(expect_kind, str) else " or ".join(expect_kind)
        raise ModelFileError(f"{path}: holds a {kind} model, but a {wanted} model was expected")
    if kind == "float":
        return build_from_header(header, arrays, path)
    reader = _reader(kind)
    if reader is None:
        raise ModelFileError(f"{path}: holds a {kind!r} model and no loader for that kind is registered "
                             f"(tinyeff reads {', '.join(('float',) + tuple(READERS))}); was it written by a "
                             "newer tinyeff or a plug-in? Import the plug-in first")
    return reader(header, arrays)


def build_from_header(header, arrays, where):
    """Rebuild the architecture ``header["arch"]`` names and load ``arrays`` into it.

    Layers listed in ``header["thinned"]`` are resized to their saved weight shapes first, and
    pruning masks among ``arrays`` re-attach themselves (``Module.load_state_dict``). Shared by
    ``load`` and the readers of the other float kinds.

    Args:
        header, arrays: as returned by ``read``.
        where: what the error messages name (the file path, or e.g. "pruned model").
    Raises:
        ModelFileError: unknown architecture, or tensors that do not fit it.
    """
    from tinyeff.nn.surgery import resize_layer
    model = _build_shapes_only(header.get("arch") or {}, where)
    arch = header.get("arch") or {}
    thinned = dict(header.get("thinned") or {})
    try:
        for name, shape in thinned.items():
            resize_layer(model.get_submodule(name), shape)
        _check_holds_every_tensor(model, arrays, where, arch)
        model.load_state_dict(arrays)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        shapes = f" with thinned layer shapes {thinned}" if thinned else ""
        raise ModelFileError(f"{where}: does not fit architecture {arch.get('name')!r}{shapes}: {exc}") from exc
    model.preprocess = header.get("preprocess")
    if thinned:
        model.thinned = thinned
    return model


def _build_shapes_only(arch, where):
    """The architecture ``arch`` names, built without drawing or touching its weights, and refused
    when its tensors exceed the model size limit."""
    from tinyeff import models
    from tinyeff.nn.init import shapes_only
    try:
        with shapes_only():
            model = models.create(arch["name"], **arch.get("kwargs", {}))
    except (KeyError, TypeError, ValueError, OverflowError, MemoryError) as exc:
        raise ModelFileError(f"{where}: cannot rebuild architecture {arch!r}: {exc}") from exc
    need = sum(p.data.nbytes for p in model.parameters()) + sum(b.nbytes for _, b in model.named_buffers())
    limit = npzfile.max_bytes()
    if need > limit:
        raise ModelFileError(f"{where}: architecture {arch!r:.200} needs {need:,} bytes of weights, more than the "
                             f"{limit:,}-byte limit (raise it with {npzfile.MAX_BYTES_ENV}=BYTES if the file is "
                             "trusted)")
    return model


def _check_holds_every_tensor(model, arrays, where, arch):
    """Refuse a file that lacks tensors its architecture needs, before any weight is loaded."""
    names = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ModelFileError(f"{where}: does not fit architecture {arch.get('name')!r}: it needs tensors the file "
                             f"does not hold (missing {missing[:5]}{' ...' if len(missing) > 5 else ''}); {FIX}")


def export_onnx(model, path, example_shape, int8_form="qdq"):
    """Write ``model`` as ONNX (needs ``pip install 'tinyeff[onnx]'``); see ``tinyeff.interop.export``."""
    from tinyeff.interop.export import export_onnx as _export
    return _export(model, path, example_shape, int8_form)
