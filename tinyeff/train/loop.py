"""``fit``: epochs of mini-batch descent, with checkpoints, energy accounting and three plug points.

See ``tinyeff.train``'s docstring for the plug points (callbacks, ``loss_fn``, ``precision``). This
file holds the loop and what it builds from names: optimizers, LR schedules, the default loss and
the default (float32) precision policy.
"""
import logging
import math
import os
import time

from tinyeff import optim
from tinyeff.data.loader import DataLoader
from tinyeff.errors import EnergyMeterError, TrainingDiverged
from tinyeff.data.transforms import make_augment, make_preprocess, preprocess_config
from tinyeff.kernels.blas import blas_threads
from tinyeff.ops.loss import cross_entropy
from tinyeff.random import manual_seed
from tinyeff.tensor import Tensor
from tinyeff.train.callbacks import TrainState
from tinyeff.train.checkpoint import restore, save_checkpoint, save_model, versions, write_json
from tinyeff.train.evaluation import evaluate
from tinyeff.train.guard import check_evaluation, check_step

log = logging.getLogger("tinyeff.train")


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
        progress: show a progress bar (only when stderr is a terminal).
        energy_meter: an ``EnergyMeter`` to read per epoch, or None to build the automatic one. A
            counter that fails mid-run is replaced by the energy model (labelled, one warning).
    Returns:
        The metrics dict that is also written to ``metrics.json``.
    Raises:
        TrainingDiverged: a loss or parameter became NaN/Inf; nothing of that epoch is saved, the
            last good checkpoint stays as it was.
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
        restore(checkpoint, state, sched)
    precision.prepare(model)
    meter = energy_meter or _default_meter()
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
            try:
                _train_epoch(model, loader, opt, loss_fn, precision, state, callbacks, progress)
                if test_split is not None:
                    result = evaluate(model, test_split)
                    check_evaluation(result, state, opt.lr)
                    state.logs.update(test_loss=result["loss"], test_accuracy=result["accuracy"])
            except TrainingDiverged as exc:
                raise TrainingDiverged(f"{exc}; {_what_was_kept(checkpoint, state)}") from None
            # the work is counted on the model as it trained this epoch: a callback may have thinned it
            work_per_image = training_work_per_image(model, train_split.images.shape[1:])
            _record_energy(meter, state, work_per_image.scaled(len(train_split.labels)))
            for cb in callbacks:
                cb.on_epoch_end(state)
            _log_epoch(state, opt)
            if sched is not None:
                sched.step()
            if checkpoint:
                save_checkpoint(checkpoint, state, sched)
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
    # disable=None: tqdm draws only when its stream is a terminal (a log file gets no redraws)
    bar = tqdm(loader, desc=f"epoch {state.epoch + 1}/{state.epochs}", unit="batch", leave=False,
               disable=None if progress else True, dynamic_ncols=True)
    loss_seen = 0
    for x, y in bar:
        logits_holder = {}
        loss = loss_fn(_LogitsTap(model, logits_holder), precision.forward_input(x), y, state)
        opt.zero_grad()
        stepped = precision.backward_and_step(loss, opt)
        state.step += 1
        n, loss_value = len(y), float(loss.data)
        if stepped:
            check_step(model, loss_value, state, opt.lr)
        if math.isfinite(loss_value):     # a skipped loss-scaling step may have an inf float16 loss
            total_loss, loss_seen = total_loss + loss_value * n, loss_seen + n
        if "logits" in logits_holder:
            correct += int((logits_holder["logits"].argmax(axis=1) == y).sum())
        seen += n
        state.logs.update(train_loss=total_loss / max(loss_seen, 1), train_accuracy=correct / seen)
        for cb in callbacks:
            cb.on_batch_end(state)
        if progress:
            rate = seen / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{total_loss / max(loss_seen, 1):.4f}", acc=f"{correct / seen:.3f}", img_s=f"{rate:.0f}")
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
    try:
        m = meter.checkpoint(f"epoch {state.epoch + 1}")
    except (EnergyMeterError, OSError) as exc:     # the epoch's work is done: never lose it to a meter
        meter.fall_back_to_model(str(exc))
        m = meter.checkpoint(f"epoch {state.epoch + 1}")
    state.logs.update(energy_j=m.energy_j, energy_source=m.source, energy_label=m.label)


def _what_was_kept(checkpoint, state):
    if checkpoint is None:
        return "nothing was saved (no out_dir)"
    if os.path.exists(checkpoint):
        return f"the last good checkpoint {checkpoint} (after epoch {state.epoch}) was kept; --resume restarts from it"
    return "nothing was saved (no epoch finished)"


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
