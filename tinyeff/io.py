"""Model files: ``.npz`` archives holding a JSON header and named arrays, read with allow_pickle=False.

The header (stored as a UTF-8 byte array under ``__header__``) says what the file is
(``kind``: "float" for a trained model; other kinds, such as quantized models, register a loader),
the architecture (``arch``: model name and builder arguments) and anything else worth keeping
(training metrics, dataset). Writing goes to a temporary file in the same directory, renamed into
place only when complete, so an interrupted save never leaves a half-written model behind.
"""
import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

from tinyeff.errors import ModelFileError

FORMAT_VERSION = 1
_LOADERS = {}


def register_loader(kind, fn):
    """Let ``load`` rebuild files of ``kind`` with ``fn(header, arrays) -> model``."""
    _LOADERS[kind] = fn


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


def save(model, path, kind="float", arrays=None, **header_fields):
    """Save ``model`` (its ``arch`` and state dict, or ``arrays`` if given) to ``path``.

    Returns:
        The file size in bytes.
    """
    arch = getattr(model, "arch", None)
    if "preprocess" not in header_fields and getattr(model, "preprocess", None) is not None:
        header_fields["preprocess"] = model.preprocess
    if arch is None:
        raise ValueError("save: the model has no .arch record; build it with tinyeff.models.create(name, ...)")
    tensors = dict(model.state_dict() if arrays is None else arrays)
    if "__header__" in tensors:
        raise ValueError("save: '__header__' is reserved and cannot name a tensor")
    header = {"format_version": FORMAT_VERSION, "kind": kind, "arch": arch,
              "tensors": {k: list(np.shape(v)) for k, v in tensors.items()}, **header_fields}
    atomic_savez(path, {"__header__": _encode_header(header), **tensors})
    return os.path.getsize(path)


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
        expect_kind: if given ("float", "quantized", ...), refuse files of another kind.
    Raises:
        ModelFileError: truncated or corrupt file, unknown architecture, wrong kind, or a tensor of
            the wrong shape (the message names the tensor).
    """
    header, arrays = read(path)
    kind = header.get("kind", "float")
    if expect_kind is not None and kind != expect_kind:
        raise ModelFileError(f"{path}: holds a {kind} model, but a {expect_kind} model was expected")
    if kind != "float":
        if kind not in _LOADERS:
            import tinyeff.compress  # noqa: F401  (registers the pruned, thinned, quantized and 16-bit kinds)
        if kind not in _LOADERS:
            raise ModelFileError(f"{path}: holds a {kind!r} model and no loader for that kind is registered "
                                 "(import the module that defines it, e.g. tinyeff.quant)")
        return _LOADERS[kind](header, arrays)
    return build_from_header(header, arrays, path)


def build_from_header(header, arrays, where, prepare=None):
    """Rebuild the architecture ``header["arch"]`` names and load ``arrays`` into it.

    Shared by ``load`` and the loaders of other kinds (e.g. pruned models).

    Args:
        header, arrays: as returned by ``read``.
        where: what the error messages name (the file path, or e.g. "pruned model").
        prepare: optional ``prepare(model)`` run before ``load_state_dict`` (e.g. re-attach masks);
            its KeyError/ValueError is reported like a state-dict mismatch.
    Raises:
        ModelFileError: unknown architecture, or tensors that do not fit it.
    """
    from tinyeff import models
    arch = header.get("arch") or {}
    try:
        model = models.create(arch["name"], **arch.get("kwargs", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{where}: cannot rebuild architecture {arch!r}: {exc}") from exc
    try:
        if prepare is not None:
            prepare(model)
        model.load_state_dict(arrays)
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"{where}: does not fit architecture {arch.get('name')!r}: {exc}") from exc
    model.preprocess = header.get("preprocess")
    return model


def export_onnx(model, path, example_shape):
    """Write ``model`` as ONNX (needs ``pip install 'tinyeff[onnx]'``); see ``tinyeff.interop.export``."""
    from tinyeff.interop.export import export_onnx as _export
    return _export(model, path, example_shape)
