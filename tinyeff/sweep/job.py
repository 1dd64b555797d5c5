"""One sweep point, start to finish, in whatever process runs it: ``execute(run_id, config)``.

The one idea: a run is a pure function of its resolved config (plus the thread count), returning a
plain JSON-able dict, so it can run in a local pool process or on a Dask worker and the driver
stores the same thing either way. It goes through the public Python API only: ``data.load``,
``models.create``, ``train.fit`` with callbacks for pruning and for the per-epoch record.

Per epoch it records accuracy, loss, time, energy (with its source: measured, or estimated by the
energy model), and the MACs and parameters of the model as it then is (a thinned model shrinks).
Peak memory is the process's resident-set high-water mark over the run: on Linux the mark is reset
at the start (``/proc/self/clear_refs``), elsewhere it is the process's lifetime peak, and the
record says which.
"""
import os
import platform
import resource
import time

from tinyeff import data, train
from tinyeff.errors import TrainingDiverged
from tinyeff.random import manual_seed


def execute(run_id, config, threads=1, root=None, progress=None):
    """Train the resolved ``config``; return the result dict the store keeps.

    Args:
        run_id: the config's hash, echoed in progress messages.
        config: a resolved config (``grid.resolve``).
        threads: OpenMP / Numba / BLAS threads for this run.
        root: dataset directory (else the usual places).
        progress: optional object with ``put(dict)``, told after every epoch.
    """
    from tinyeff.threads import set_threads
    set_threads(threads)
    memory_source = _reset_peak_memory()
    train_split, test_split = data.load(config["data"], root=root)
    if config["limit"] is not None:
        train_split = train_split.head(config["limit"])
    manual_seed(config["seed"])
    model = build(config, train_split)
    image_shape = train_split.images.shape[1:]
    built = _macs(model, image_shape)
    pruning = pruning_callback(config)
    recorder = EpochRecorder(run_id, image_shape, len(train_split.labels), progress)
    precision = None
    if config["precision"] != "float32":
        from tinyeff.precision import get_policy
        precision = get_policy(config["precision"])
    t0 = time.perf_counter()
    try:
        metrics = train.fit(model, train_split, test_split, epochs=config["epochs"],
                            batch_size=config["batch_size"], optimizer=config["optimizer"], lr=config["lr"],
                            weight_decay=config["weight_decay"], schedule=config["schedule"],
                            augment=config["augment"] or None, seed=config["seed"],
                            callbacks=[c for c in (pruning, recorder) if c is not None], precision=precision,
                            progress=False)
    except TrainingDiverged as exc:       # a result of this config and seed, not a failure to retry
        return {"diverged": str(exc), "final_accuracy": None, "epochs": recorder.rows, "host": platform.node(),
                "threads": threads, "params": built["params"], "macs_dense": built["macs"],
                "wall_time_s": time.perf_counter() - t0}
    final = _macs(model, image_shape)
    energy = metrics["energy"]
    return {
        "final_accuracy": metrics["final_test_accuracy"], "train_time_s": metrics["train_time_s"],
        "wall_time_s": time.perf_counter() - t0, "energy_j": energy["total_j"],
        "energy_source": energy["source"], "energy_label": energy.get("label"),
        "macs_dense": built["macs"], "macs_effective": final["macs_effective"],
        "params": built["params"], "params_final": final["params"],
        "peak_memory_bytes": _peak_memory(), "peak_memory_source": memory_source,
        "pruning_note": getattr(pruning, "note", None), "pruning_events": getattr(pruning, "events", []),
        "host": platform.node(), "pid": os.getpid(), "threads": threads,
        "train_examples": int(len(train_split.labels)), "epochs": recorder.rows, "versions": metrics["versions"],
    }


def build(config, split):
    """The model a resolved config describes, sized to ``split``, initialized and preprocessed as asked."""
    from tinyeff.data.transforms import preprocess_config
    from tinyeff.models.knobs import build as build_with_knobs
    resnet = config["model"] == "resnet"
    model = build_with_knobs(config["model"], split, width=config["width"], init=config["init"],
                             depth=config["depth"] if resnet else None,
                             shortcut=config["shortcut"] if resnet else None)
    model.preprocess = preprocess_config(split, config["preprocess"])
    return model


def pruning_callback(config):
    """The fit callback for the config's pruning axis, or None."""
    if config["prune"] == "none":
        return None
    from tinyeff.compress.thin_train import MaskedPruning, ThinningPruning, event_targets
    targets = event_targets(config["prune_sparsity"], config["epochs"], config["prune_every"],
                            config["prune_schedule"])
    return ThinningPruning(targets) if config["prune"] == "channel" else MaskedPruning(targets)


class EpochRecorder(train.Callback):
    """Collects one row per epoch (after fit's own logging) and reports it to ``progress``."""

    def __init__(self, run_id, image_shape, train_examples, progress):
        self.run_id, self.image_shape, self.progress = run_id, image_shape, progress
        self.train_examples = int(train_examples)
        self.rows = []

    def on_epoch_end(self, state):
        logs = state.logs
        counts = _macs(state.model, self.image_shape)
        row = {"epoch": state.epoch + 1, "train_loss": logs.get("train_loss"),
               "train_accuracy": logs.get("train_accuracy"), "test_loss": logs.get("test_loss"),
               "test_accuracy": logs.get("test_accuracy"), "lr": state.optimizer.lr,
               "time_s": logs.get("train_time_s"), "energy_j": logs.get("energy_j"),
               "energy_source": logs.get("energy_source"), "params": counts["params"],
               "macs_dense": counts["macs"], "macs_effective": counts["macs_effective"]}
        self.rows.append(row)
        if self.progress is not None:
            self.progress.put({"id": self.run_id, "epochs": state.epochs, "train_examples": self.train_examples,
                               **row})


def _macs(model, image_shape):
    from tinyeff.flops import count
    totals = count(model, (1,) + tuple(image_shape)).totals
    return {"macs": int(totals["macs"]), "macs_effective": int(totals["macs_effective"]),
            "params": int(sum(p.size for p in model.parameters()))}


def _reset_peak_memory():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                       # resets VmHWM, the peak resident set (Linux >= 4.0)
        return "peak RSS during the run (VmHWM, reset at its start)"
    except OSError:
        return "peak RSS of the worker process so far (includes earlier runs in it)"


def _peak_memory():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if platform.system() == "Darwin" else 1024     # ru_maxrss: bytes on macOS, KiB on Linux
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale
