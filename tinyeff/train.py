"""Training and evaluation: ``fit`` runs epochs of mini-batch descent, ``evaluate`` scores a split.

The one idea: a training loop is a few lines (forward, loss, backward, step), and everything else
attaches through three plug points, so pruning schedules, distillation and mixed precision never
edit this file:

- ``callbacks``: objects with ``on_train_begin/on_epoch_begin/on_batch_end/on_epoch_end/
  on_train_end(state)`` (see ``Callback``); pruning schedules live here.
- ``loss_fn(model, x, y, state) -> Tensor``: replaces cross-entropy; distillation lives here.
- ``precision``: ``prepare(model)``, ``forward_input(x) -> Tensor``, ``backward_and_step(loss,
  optimizer) -> bool`` and ``report() -> dict``; mixed precision with loss scaling lives here.

With ``out_dir``, every epoch ends with an atomic checkpoint (model, optimizer state, history), and
``resume=True`` continues from it, so an interrupted run loses at most one epoch. The batch order of
epoch e depends only on (seed, e), so a resumed run sees the same batches it would have seen.
"""
import json
import logging
import os
import time

import numpy as np

from tinyeff import io, optim
from tinyeff.data.loader import DataLoader
from tinyeff.data.transforms import RandomCrop, RandomFlip, Standardize
from tinyeff.kernels.blas import blas_threads
from tinyeff.ops.loss import cross_entropy
from tinyeff.random import manual_seed
from tinyeff.tensor import Tensor, no_grad

log = logging.getLogger("tinyeff.train")


class Callback:
    """Base class: override the moments you need. ``state`` is the live ``TrainState``."""

    def on_train_begin(self, state):
        pass

    def on_epoch_begin(self, state):
        pass

    def on_batch_end(self, state):
        pass

    def on_epoch_end(self, state):
        pass

    def on_train_end(self, state):
        pass


class TrainState:
    """What callbacks see: the model, the optimizer, counters, the history and this epoch's logs."""

    def __init__(self, model, optimizer, epochs, steps_per_epoch):
        self.model, self.optimizer = model, optimizer
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.epoch, self.step = 0, 0
        self.history = {"epoch": [], "train_loss": [], "train_accuracy": [], "test_loss": [],
                        "test_accuracy": [], "lr": [], "time_s": [], "energy_j": []}
        self.logs = {}
        self.stop = False


class Float32Policy:
    """The default precision: float32 everywhere, a plain backward and step."""
    name = "float32"

    def prepare(self, model):
        pass

    def forward_input(self, x):
        return Tensor(x)

    def backward_and_step(self, loss, optimizer):
        loss.backward()
        optimizer.step()
        return True

    def report(self):
        return {"precision": self.name}


# --- preprocessing recorded with the model ----------------------------------------------------------
def preprocess_config(train_split):
    """Per-channel standardization fitted on the training images, as a JSON-able dict."""
    std = Standardize.fit(train_split.images)
    return {"kind": "standardize", "mean": std.mean.tolist(), "std": std.std.tolist()}


def make_preprocess(config):
    """The uint8 -> float32 function a ``preprocess_config`` dict describes."""
    if config is None:
        from tinyeff.data.transforms import scale_01
        return scale_01
    if config.get("kind") != "standardize":
        raise ValueError(f"unknown preprocessing {config.get('kind')!r}; expected 'standardize'")
    return Standardize(config["mean"], config["std"])


def make_augment(names, image_size):
    """Augmentations by name: "crop" (random crop, padding size // 8) and "flip" (horizontal)."""
    table = {"crop": lambda: RandomCrop(max(1, image_size // 8)), "flip": lambda: RandomFlip()}
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {sorted(table)}")
    return [table[n]() for n in names]


def make_optimizer(name, params, lr, weight_decay=0.0, momentum=0.9):
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose adam, adamw or sgd")


def make_schedule(name, optimizer, epochs):
    if name in (None, "none", "constant"):
        return None
    if name == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return optim.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    raise ValueError(f"unknown schedule {name!r}; choose none, cosine or step")


def default_loss(model, x, y, state):
    return cross_entropy(model(x), y)


# --- evaluation -------------------------------------------------------------------------------------
def predict(model, images, batch_size=256, preprocess=None):
    """Logits (N, K) float32 for uint8 ``images`` (N, C, H, W), in eval mode and without a graph."""
    preprocess = preprocess or make_preprocess(getattr(model, "preprocess", None))
    was_training = model.training
    model.eval()
    outputs = []
    with no_grad(), blas_threads(1):
        for start in range(0, len(images), batch_size):
            x = np.asarray(preprocess(images[start:start + batch_size]), dtype=np.float32)
            outputs.append(np.asarray(model(Tensor(x)).data, dtype=np.float32))
    model.train(was_training)
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)


def evaluate(model, split, batch_size=256, preprocess=None):
    """Accuracy, mean cross-entropy, per-class accuracy and confusion matrix of ``model`` on ``split``.

    Returns:
        dict with ``accuracy`` (fraction), ``loss``, ``per_class_accuracy`` (list), ``confusion``
        (K x K list, rows = true class, columns = predicted), ``n`` and ``time_s``.
    """
    t0 = time.perf_counter()
    logits = predict(model, split.images, batch_size, preprocess)
    elapsed = time.perf_counter() - t0
    labels = split.labels
    k = logits.shape[1]
    predicted = logits.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    loss = float(cross_entropy(Tensor(logits), labels).data) if len(labels) else float("nan")
    return {"accuracy": float((predicted == labels).mean()), "loss": loss,
            "per_class_accuracy": per_class.tolist(), "confusion": confusion.tolist(),
            "n": int(len(labels)), "time_s": elapsed}


# --- training ---------------------------------------------------------------------------------------
def fit(model, train_split, test_split=None, *, epochs, batch_size=64, optimizer="adam", lr=1e-3,
        weight_decay=0.0, schedule=None, augment=None, seed=0, callbacks=(), loss_fn=None,
        precision=None, out_dir=None, resume=False, progress=True, energy_meter=None):
    """Train ``model`` on ``train_split``; evaluate on ``test_split`` after every epoch.

    Args:
        optimizer: "adam", "adamw", "sgd" or an ``optim.Optimizer``.
        schedule: None, "cosine" or "step" (stepped once per epoch), or an ``optim.LRSchedule``.
        augment: list of augmentation names ("crop", "flip") or callables ``(x, rng) -> x``.
        out_dir: write ``model.npz``, ``checkpoint.npz`` and ``metrics.json`` there.
        resume: continue from ``out_dir/checkpoint.npz`` if it exists.
        energy_meter: an ``EnergyMeter`` to read per epoch, or None to build the automatic one.
    Returns:
        The metrics dict that is also written to ``metrics.json``.
    """
    manual_seed(seed)
    precision = precision or Float32Policy()
    if getattr(model, "preprocess", None) is None:
        model.preprocess = preprocess_config(train_split)
    if augment and all(isinstance(a, str) for a in augment):
        augment = make_augment(augment, train_split.images.shape[-1])
    loader = DataLoader(train_split, batch_size, shuffle=True, seed=seed,
                        preprocess=make_preprocess(model.preprocess), augment=augment)
    opt = optimizer if isinstance(optimizer, optim.Optimizer) else \
        make_optimizer(optimizer, model.parameters(), lr, weight_decay)
    sched = schedule if isinstance(schedule, optim.LRSchedule) else make_schedule(schedule, opt, epochs)
    loss_fn = loss_fn or default_loss
    state = TrainState(model, opt, epochs, len(loader))
    checkpoint = os.path.join(out_dir, "checkpoint.npz") if out_dir else None
    if resume and checkpoint and os.path.exists(checkpoint):
        _restore(checkpoint, state, sched)
    precision.prepare(model)
    meter = energy_meter or _default_meter()
    work_per_image = training_work_per_image(model, train_split.images.shape[1:])   # dense kernels: fixed
    config = {"epochs": epochs, "batch_size": batch_size, "optimizer": type(opt).__name__.lower(), "lr": lr,
              "weight_decay": weight_decay, "schedule": schedule if isinstance(schedule, str) or schedule is None
              else type(schedule).__name__, "augment": [repr(a) for a in augment or []], "seed": seed,
              "arch": getattr(model, "arch", None), "train_examples": int(len(train_split.labels))}
    for cb in callbacks:
        cb.on_train_begin(state)
    t_start = time.perf_counter()
    with meter, blas_threads(1):      # our OpenMP kernels own the cores (see kernels/blas.py)
        for epoch in range(state.epoch, epochs):
            state.epoch, state.logs = epoch, {}
            loader.set_epoch(epoch)
            for cb in callbacks:
                cb.on_epoch_begin(state)
            _train_epoch(model, loader, opt, loss_fn, precision, state, callbacks, progress)
            if test_split is not None:
                result = evaluate(model, test_split)
                state.logs.update(test_loss=result["loss"], test_accuracy=result["accuracy"])
            _record_energy(meter, state, work_per_image.scaled(len(train_split.labels)))
            for cb in callbacks:
                cb.on_epoch_end(state)
            _log_epoch(state, opt)
            if sched is not None:
                sched.step()
            if checkpoint:
                _save_checkpoint(checkpoint, state, sched)
            _log_epoch_line(state)
            if state.stop:
                break
    for cb in callbacks:
        cb.on_train_end(state)
    metrics = _metrics(state, config, precision, meter, time.perf_counter() - t_start, test_split, model)
    if out_dir:
        save_model(model, os.path.join(out_dir, "model.npz"))
        write_json(os.path.join(out_dir, "metrics.json"), metrics)
    return metrics


def _train_epoch(model, loader, opt, loss_fn, precision, state, callbacks, progress):
    from tqdm import tqdm
    model.train()
    total_loss, correct, seen, t0 = 0.0, 0, 0, time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {state.epoch + 1}/{state.epochs}", unit="batch", leave=False,
               disable=not progress, dynamic_ncols=True)
    for x, y in bar:
        logits_holder = {}
        loss = loss_fn(_LogitsTap(model, logits_holder), precision.forward_input(x), y, state)
        opt.zero_grad()
        precision.backward_and_step(loss, opt)
        state.step += 1
        n = len(y)
        total_loss += float(loss.data) * n
        if "logits" in logits_holder:
            correct += int((logits_holder["logits"].argmax(axis=1) == y).sum())
        seen += n
        state.logs.update(train_loss=total_loss / seen, train_accuracy=correct / seen)
        for cb in callbacks:
            cb.on_batch_end(state)
        if progress:
            rate = seen / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}", img_s=f"{rate:.0f}")
    state.logs["train_time_s"] = time.perf_counter() - t0
    state.logs["images_per_s"] = seen / max(state.logs["train_time_s"], 1e-9)


class _LogitsTap:
    """Calls the model and keeps a copy of its output, so accuracy costs no second forward."""

    def __init__(self, model, holder):
        self.model, self.holder = model, holder

    def __call__(self, x):
        out = self.model(x)
        self.holder["logits"] = out.data
        return out

    def __getattr__(self, name):
        return getattr(self.model, name)


def _default_meter():
    import warnings
    from tinyeff.energy import EnergyMeter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the "estimated" label is in the metrics
        meter = EnergyMeter(liveness_s=0.05)
        meter.select()
    return meter


def training_work_per_image(model, image_shape):
    """The energy model's work (MACs, bytes) of one training step per image, from ``tinyeff.flops``."""
    from tinyeff.energy.layers import estimate_model, total_work
    rows, _ = estimate_model(model, (1,) + tuple(image_shape), train=True)
    return total_work(rows)


def _record_energy(meter, state, epoch_work):
    meter.add_work(epoch_work)
    m = meter.checkpoint(f"epoch {state.epoch + 1}")
    state.logs.update(energy_j=m.energy_j, energy_source=m.source, energy_label=m.label)


def _log_epoch(state, opt):
    h = state.history
    h["epoch"].append(state.epoch + 1)
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "energy_j"):
        h[key].append(state.logs.get(key))
    h["lr"].append(opt.lr)
    h["time_s"].append(state.logs.get("train_time_s"))


def _log_epoch_line(state):
    logs = state.logs
    test = f", test acc {logs['test_accuracy']:.4f}" if "test_accuracy" in logs else ""
    log.info(f"epoch {state.epoch + 1}/{state.epochs}: loss {logs.get('train_loss', float('nan')):.4f}, "
          f"train acc {logs.get('train_accuracy', 0):.4f}{test}, {logs.get('images_per_s', 0):.0f} img/s, "
          f"energy {logs.get('energy_j', 0):.1f} J ({'estimated' if logs.get('energy_source') == 'model' else 'measured'})")


def _metrics(state, config, precision, meter, wall_s, test_split, model):
    h = state.history
    times = [t for t in h["time_s"] if t]
    energies = [e for e in h["energy_j"] if e is not None]
    return {
        "config": config,
        "history": h,
        "final_test_accuracy": h["test_accuracy"][-1] if h["test_accuracy"] else None,
        "wall_time_s": wall_s,
        "train_time_s": float(sum(times)),
        "images_per_s": config["train_examples"] * len(times) / sum(times) if times else None,
        "energy": {"total_j": float(sum(energies)), "per_epoch_j": energies,
                   "source": meter.source, "estimated": meter.source == "model",
                   "label": state.logs.get("energy_label")},
        "precision": precision.report(),
        "parameters": int(sum(p.size for p in model.parameters())),
        "versions": versions(),
    }


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


# --- checkpoints ------------------------------------------------------------------------------------
def _save_checkpoint(path, state, sched):
    arrays = {f"model/{k}": v for k, v in state.model.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in state.optimizer.state_dict().items()})
    header = {"epoch": state.epoch + 1, "step": state.step, "history": state.history,
              "schedule_t": sched.t if sched is not None else None, "preprocess": state.model.preprocess}
    arrays["__checkpoint__"] = np.frombuffer(json.dumps(header, default=_json_default).encode(), np.uint8)
    io.atomic_savez(path, arrays)


def _restore(path, state, sched):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(arrays.pop("__checkpoint__").tobytes().decode())
    state.model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
    state.optimizer.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("optim/")})
    state.epoch, state.step, state.history = header["epoch"], header["step"], header["history"]
    state.model.preprocess = header["preprocess"]
    if sched is not None and header["schedule_t"] is not None:
        sched.t = header["schedule_t"]
