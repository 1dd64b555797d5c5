"""What a training run writes: the model file, per-epoch checkpoints, metrics JSON and versions.

A checkpoint is one ``.npz`` (no pickle) with the model's state dict under ``model/``, the
optimizer's under ``optim/`` and a JSON record (epoch, step, history, schedule position,
preprocessing) under ``__checkpoint__``. Pruning masks are buffers, so they travel in the state
dict and re-attach on restore (``Module.load_state_dict``).
"""
import json
import os

import numpy as np

from tinyeff import io


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
    """Write JSON through a temporary file and a rename."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, default=_json_default)
    os.replace(tmp, path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def save_checkpoint(path, state, sched):
    """Write ``state`` (model, optimizer, counters, history) and the schedule position to ``path``."""
    arrays = {f"model/{k}": v for k, v in state.model.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in state.optimizer.state_dict().items()})
    header = {"epoch": state.epoch + 1, "step": state.step, "history": state.history,
              "schedule_t": sched.t if sched is not None else None, "preprocess": state.model.preprocess}
    arrays["__checkpoint__"] = np.frombuffer(json.dumps(header, default=_json_default).encode(), np.uint8)
    io.atomic_savez(path, arrays)


def restore(path, state, sched):
    """Load a checkpoint written by ``save_checkpoint`` into ``state`` (and ``sched``) in place."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(arrays.pop("__checkpoint__").tobytes().decode())
    state.model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
    state.optimizer.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("optim/")})
    state.epoch, state.step, state.history = header["epoch"], header["step"], header["history"]
    state.model.preprocess = header["preprocess"]
    if sched is not None and header["schedule_t"] is not None:
        sched.t = header["schedule_t"]
