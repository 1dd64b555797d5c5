"""Structured pruning *during* training that physically thins the network at every pruning event.

The one idea: masked pruning saves nothing while training, because the dense kernels still multiply
the zeros. Channel pruning removes whole filters, and ``thinning.thin`` then deletes them (and the
input channels that read them), so the epochs after a pruning event train a genuinely smaller model:
fewer MACs per step, less time per epoch, less energy. Training then goes on with the same optimizer
object, its per-weight state (momentum, Adam's m and v) *sliced* to the surviving weights rather than
reset, so the survivors keep their history.

Which channels: every filter ``thinning_plan`` can thin (``prune(method="channel")``), each event
removing a fraction of the channels still alive so the cumulative fraction follows the schedule
(``event_targets``). In a ResNet those are the inner channels of every block (conv1 -> conv2), the
choice of Li et al. 2017 ("Pruning Filters for Efficient ConvNets", sec. 4.2), which leaves the
residual stream alone because its channels are shared by every block of a stage; both convs of each
block shrink. ``stage_groups=True`` prunes the residual stage channels too (``prune_channel_groups``):
more savings, and at small scale much more accuracy lost.

Unstructured (magnitude) masks stay available through ``MaskedPruning``; they are labelled "masked:
no training-time saving", because that is what they are. What this file leaves out: the mask math
(masks.py), attaching (prune.py) and deleting channels (thinning.py).
"""
import numpy as np

from tinyeff.compress.prune import prune, prune_to_sparsity, sparsity_report
from tinyeff.compress.thinning import channel_groups, prune_channel_groups, thin
from tinyeff.train import Callback

MASKED_NOTE = "masked: no training-time saving"
THINNED_NOTE = "thinned during training: later epochs train a smaller dense model"


def event_targets(final_sparsity, epochs, every, schedule="iterative"):
    """{epoch index: cumulative target} for pruning events at the start of epochs every, 2*every, ...

    The first event comes after ``every`` epochs of training, and the last one before the final
    epoch, so a pruned network always trains at least one epoch. ``schedule``:
    "iterative": the same fraction of the remaining channels each event, 1 - (1 - s) ** (k / K)
    (Han et al. 2015); "polynomial": Zhu & Gupta 2017, s * (1 - (1 - k / K) ** 3), fast early.
    """
    if schedule not in ("iterative", "polynomial"):
        raise ValueError(f"pruning schedule {schedule!r}: choose iterative or polynomial")
    starts = list(range(every, epochs, every))
    total = len(starts)
    targets = {}
    for k, epoch in enumerate(starts, start=1):
        if schedule == "iterative":
            targets[epoch] = 1.0 - (1.0 - final_sparsity) ** (k / total)
        else:
            targets[epoch] = final_sparsity * (1.0 - (1.0 - k / total) ** 3)
    return targets


class ThinningPruning(Callback):
    """At the start of each event epoch: channel-prune, thin in place, slice the optimizer state.

    Args:
        targets: {epoch index: cumulative fraction of channels removed}, e.g. from ``event_targets``.
        norm: 1 or 2, the filter norm that ranks channels.
        stage_groups: also prune a ResNet's residual stage channels (see the module docstring).

    ``events`` records (epoch, target, parameters before, parameters after) for every event.
    """

    note = THINNED_NOTE

    def __init__(self, targets, norm=1, stage_groups=False):
        self.targets, self.norm, self.stage_groups = dict(targets), norm, stage_groups
        self.done = 0.0
        self.events = []

    def on_epoch_begin(self, state):
        target = self.targets.get(state.epoch)
        if target is None or target <= self.done:
            return
        fraction = 1.0 - (1.0 - target) / (1.0 - self.done)   # of the channels still alive
        before = _count(state.model)
        prune(state.model, fraction, "channel", norm=self.norm, optimizer=state.optimizer)
        if self.stage_groups and channel_groups(state.model):
            prune_channel_groups(state.model, fraction, norm=self.norm, optimizer=state.optimizer)
        thin_with_optimizer(state.model, state.optimizer)
        self.done = target
        self.events.append({"epoch": state.epoch, "target": target, "params_before": before,
                            "params_after": _count(state.model)})


class MaskedPruning(Callback):
    """Magnitude masks (global threshold) at the event epochs: same schedule, no thinning."""

    note = MASKED_NOTE

    def __init__(self, targets):
        self.targets = dict(targets)
        self.events = []

    def on_epoch_begin(self, state):
        target = self.targets.get(state.epoch)
        if target is None:
            return
        prune_to_sparsity(state.model, target, "global", optimizer=state.optimizer)
        self.events.append({"epoch": state.epoch, "target": target,
                            "sparsity": sparsity_report(state.model)["total"]["sparsity"]})


def thin_with_optimizer(model, optimizer):
    """``thin(model, inplace=True)``, then point ``optimizer`` at the new parameters with its state sliced."""
    owner = _owners(model)
    kept = {owner[id(p)]: s for p, s in zip(optimizer.params, optimizer.state) if id(p) in owner}
    log = []
    thin(model, inplace=True, index_log=log)
    for module, name, axis, keep in log:
        state = kept.get((id(module), name))
        for key, value in (state or {}).items():
            if isinstance(value, np.ndarray) and value.ndim > axis:
                state[key] = np.ascontiguousarray(np.take(value, keep, axis=axis))
    optimizer.params = list(model.parameters())
    owner = _owners(model)                     # thinning replaced the Parameter objects it sliced
    optimizer.state = [kept.get(owner[id(p)], {}) for p in optimizer.params]
    return model


def _owners(model):
    """id(Parameter) -> (id(module), attribute name): what stays the same when thinning slices it."""
    return {id(p): (id(module), name) for _, module in model.named_modules()
            for name, p in module._parameters.items() if p is not None}


def _count(model):
    return int(sum(p.size for p in model.parameters()))
