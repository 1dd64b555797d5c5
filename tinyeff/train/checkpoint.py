"""What a training run writes: the model file, per-epoch checkpoints, metrics JSON and versions.

A checkpoint is one ``.npz`` (no pickle) with the model's state dict under ``model/``, the
optimizer's under ``optim/`` and a JSON record (epoch, step, history, schedule position,
preprocessing) under ``__checkpoint__``. Pruning masks are buffers, so they travel in the state
dict and re-attach on restore (``Module.load_state_dict``).
"""
import json

import numpy as np

from tinyeff import fsio, io, npzfile
from tinyeff.errors import ModelFileError


def save_model(model, path):
    """Save a trained model as a float model file; pruning masks are buffers and travel with it."""
    return io.save(model, path)


def versions():
    """Library versions for reproducibility records."""
    import platform
    import tinyeff
    out = {"python": platform.python_version(), "numpy": np.__version__, "tinyeff": tinyeff.__version__}
    for name in ("numba", "scipy", "matplotlib"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = None
    return out


def write_json(path, data):
    """Write strict JSON (NaN refused) through a temporary file and a rename (``tinyeff.fsio``)."""
    return fsio.write_json(path, data)


def save_checkpoint(path, state, sched):
    """Write ``state`` (model, optimizer, counters, history) and the schedule position to ``path``."""
    arrays = {f"model/{k}": v for k, v in state.model.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in state.optimizer.state_dict().items()})
    header = {"epoch": state.epoch + 1, "step": state.step, "history": state.history,
              "schedule_t": sched.t if sched is not None else None, "preprocess": state.model.preprocess}
    arrays["__checkpoint__"] = np.frombuffer(fsio.dumps_json(header, indent=None).encode(), np.uint8)
    fsio.savez(path, arrays)


def restore(path, state, sched):
    """Load a checkpoint written by ``save_checkpoint`` into ``state`` (and ``sched``) in place.

    Raises:
        ModelFileError: the checkpoint is damaged (bounded read, see ``tinyeff.npzfile``) or was
            written for another model or optimizer; the message names the file and the fix.
    """
    fix = f"delete {path} to start the run over, or resume with the settings that wrote it"
    arrays = npzfile.read(path, what="checkpoint", fix=fix)
    try:
        header = json.loads(arrays.pop("__checkpoint__").tobytes().decode())
        epoch, step, history = int(header["epoch"]), int(header["step"]), dict(header["history"])
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: the checkpoint record is missing or corrupt ({exc!r}); {fix}") from None
    try:
        state.model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
        state.optimizer.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("optim/")})
        _check_optimizer_shapes(state.optimizer)
    except (KeyError, ValueError, IndexError) as exc:
        raise ModelFileError(f"{path}: was written for a different model or optimizer ({exc}); {fix}") from None
    state.epoch, state.step, state.history = epoch, step, history
    state.model.preprocess = header["preprocess"]
    if sched is not None and header["schedule_t"] is not None:
        sched.t = header["schedule_t"]


def _check_optimizer_shapes(optimizer):
    for i, (p, slots) in enumerate(zip(optimizer.params, optimizer.state)):
        for key, value in slots.items():
            if np.ndim(value) and np.shape(value) != p.data.shape:
                raise ValueError(f"optimizer state {i}.{key} has shape {np.shape(value)}, parameter {i} {p.data.shape}")
