"""Model files: ``.npz`` archives holding a JSON header and named arrays, read with allow_pickle=False.

The header (stored as a UTF-8 byte array under ``__header__``) says what the file is
(``kind``: "float" for a trained model, or one of the kinds in ``READERS``), the architecture
(``arch``: model name and builder arguments), the layer shapes of a thinned model (``thinned``) and
anything else worth keeping (training metrics, dataset).

Each non-float kind is read by the module that writes it. ``READERS`` names that module as a
string and it is imported on first use, so this file depends on none of them: compression and
quantization import io to save, never the other way round. Writing goes to a temporary file in the same directory, renamed into
place only when complete, so an interrupted save never leaves a half-written model behind.
"""
import importlib
import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

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


def atomic_savez(path, arrays):
    """Write ``arrays`` to ``path`` (.npz, compressed) through a temporary file and a rename."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


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
    """Read a model file; return (header dict, dict of arrays). Raises ModelFileError on damage."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such model file; train one with `tinyeff train ... --out DIR`")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
        raise ModelFileError(f"{path}: not a readable tinyeff model file (truncated or corrupt: {exc}); "
                             "re-save or re-train the model") from exc
    if "__header__" not in arrays:
        raise ModelFileError(f"{path}: has no tinyeff header; it was not written by tinyeff.io.save")
    try:
        header = json.loads(arrays.pop("__header__").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: the header is corrupt ({exc})") from exc
    missing = [k for k in header.get("tensors", {}) if k not in arrays]
    if missing:
        raise ModelFileError(f"{path}: tensors listed in the header are missing: {missing}")
    return header, arrays


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
    from tinyeff import models
    from tinyeff.nn.surgery import resize_layer
    arch = header.get("arch") or {}
    try:
        model = models.create(arch["name"], **arch.get("kwargs", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{where}: cannot rebuild architecture {arch!r}: {exc}") from exc
    thinned = dict(header.get("thinned") or {})
    try:
        for name, shape in thinned.items():
            resize_layer(model.get_submodule(name), shape)
        model.load_state_dict(arrays)
    except (KeyError, TypeError, ValueError) as exc:
        shapes = f" with thinned layer shapes {thinned}" if thinned else ""
        raise ModelFileError(f"{where}: does not fit architecture {arch.get('name')!r}{shapes}: {exc}") from exc
    model.preprocess = header.get("preprocess")
    if thinned:
        model.thinned = thinned
    return model
