"""Per-layer energy estimate of a model, the efficiency score, and per-epoch training energy.

``estimate_model`` turns the FLOP counter's per-layer counts into WorkCounts and prices them with a
cost profile (``model.py``): MACs by executed dtype (effective MACs when a sparse kernel ran),
other arithmetic as fp32 adds, the layer's tensors (weights in their stored format, input, output)
charged once at the smallest cache level that holds them, plus GEMM operand traffic from L1.
Training multiplies by 3 (backward = 2x forward MACs: gradients of input and weights). Each layer
is also priced with its *nonzero* MACs (``energy_nonzero_j``: the same tensors, MACs on nonzero
weights only), the saving a pruned model makes available to a kernel that skips every zero.
Every figure is an estimate and carries source="model".
"""
from dataclasses import dataclass

from tinyeff.energy.meter import Measurement
from tinyeff.energy.model import WorkCounts, cache_sizes, estimate, gemm_l1_bytes, load_profile, place_bytes

TRAIN_FACTOR = 3   # forward + backward (grad wrt input and wrt weights, each as costly as forward)


@dataclass
class LayerEnergy:
    name: str
    type: str
    macs_effective: int
    work: WorkCounts
    energy_j: float
    compute_j: float
    memory_j: float
    macs_nonzero: int = 0
    energy_nonzero_j: float = 0.0


def layer_work(layer, cache_bytes, nonzero=False):
    """WorkCounts of one LayerCount (from tinyeff.flops) for one forward pass; ``nonzero`` prices
    the MACs on nonzero weights instead of the ones the kernels ran."""
    n_macs = layer.macs_nonzero if nonzero else layer.macs_effective
    macs = {layer.dtype: n_macs} if n_macs else {}
    ops = {"fp32_add": layer.other_flops} if layer.other_flops else {}
    moved = place_bytes([layer.param_bytes, layer.input_bytes, layer.activation_bytes], cache_bytes)
    if n_macs:
        itemsize = 1 if layer.dtype == "int8" else 4
        l1 = int(gemm_l1_bytes(n_macs, itemsize, itemsize))
        moved["l1"] = moved.get("l1", 0) + l1
    return WorkCounts(macs, ops, moved)


def estimate_model(model, input_shape, profile=None, train=False):
    """Estimate per-layer energy of one forward (or training) pass of ``input_shape``.

    Args:
        model: a tinyeff Module.
        input_shape: full input shape with batch, e.g. (1, 3, 32, 32).
        profile: cost profile name, path or CostProfile.
        train: price a training step (forward + backward) instead of inference.

    Returns:
        (list of LayerEnergy, total Measurement with source="model").
    """
    from tinyeff.flops import count
    p = load_profile(profile)
    caches = p.cache_bytes or cache_sizes()
    report = count(model, input_shape)
    factor = TRAIN_FACTOR if train else 1
    rows = []
    for layer in report.layers:
        work = layer_work(layer, caches).scaled(factor)
        est = estimate(work, p)
        nonzero = estimate(layer_work(layer, caches, nonzero=True).scaled(factor), p)
        rows.append(LayerEnergy(layer.name, layer.type, layer.macs_effective * factor, work,
                                est.total_j, est.compute_j, sum(est.memory_j.values()),
                                layer.macs_nonzero * factor, nonzero.total_j))
    est = estimate(total_work(rows), p)
    state = "calibrated" if p.calibrated else "uncalibrated"
    result = Measurement(est.total_j, 0.0, "model", {r.name: r.energy_j for r in rows},
                         f"model={p.name}, {state}", detail={"train": train, "input_shape": list(input_shape)})
    return rows, result


def total_work(rows):
    """The summed WorkCounts of ``estimate_model``'s per-layer rows (what an EnergyMeter's add_work takes)."""
    total = WorkCounts()
    for row in rows:
        total = total + row.work
    return total


def efficiency_score(accuracy, energy):
    """Accuracy per joule: ``accuracy`` (fraction) / energy (a Measurement or joules)."""
    energy_j = energy.energy_j if isinstance(energy, Measurement) else float(energy)
    if energy_j <= 0:
        raise ValueError(f"efficiency_score: energy must be positive, got {energy_j} J")
    return accuracy / energy_j


class TrainingEnergy:
    """Per-epoch and cumulative training energy on top of an EnergyMeter's checkpoints.

    Usage: ``with EnergyMeter() as m: log = TrainingEnergy(m); ...; log.end_epoch(accuracy)``.
    """

    def __init__(self, meter):
        self.meter = meter
        self.epochs = []   # (Measurement of the epoch, accuracy or None)

    def end_epoch(self, accuracy=None):
        """Close the current epoch; return its Measurement."""
        m = self.meter.checkpoint(f"epoch{len(self.epochs) + 1}")
        self.epochs.append((m, accuracy))
        return m

    @property
    def cumulative_j(self):
        return sum(m.energy_j for m, _ in self.epochs)

    def rows(self):
        """One dict per epoch: energy, cumulative energy, source, accuracy, accuracy per joule."""
        out, running = [], 0.0
        for i, (m, acc) in enumerate(self.epochs, 1):
            running += m.energy_j
            out.append({"epoch": i, "energy_j": m.energy_j, "cumulative_j": running, "time_s": m.time_s,
                        "source": m.source, "accuracy": acc,
                        "accuracy_per_j": None if acc is None or running <= 0 else acc / running})
        return out
