"""Pruning schedules, and the training callbacks that apply them from ``tinyeff.train.fit``.

A schedule answers two questions for a global step t: ``should_prune(t)`` and ``sparsity(t)``, the
target fraction of zeros. ``PruningCallback`` asks them after every batch and calls
``prune_to_sparsity``, which only removes more weights (never revives any) and zeroes the
optimizer's momentum / Adam moments at the newly pruned positions, so pruned weights stay 0.

- ``OneShot(s)``: prune to s once, before the first batch; fine-tuning is the rest of ``fit``.
- ``ConstantSparsity(s, begin_step, end_step, frequency)``: TF-MOT's, hold s from begin_step on.
- ``PolynomialDecay``: Zhu & Gupta 2017, eq. 1, and TF-MOT's PolynomialDecay:
  s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** power, with n * dt = end_step - begin_step,
  applied every ``frequency`` (= dt) steps from begin_step to end_step, then held at s_f.
- ``Iterative(s, every_epochs, rounds)``: prune at the start of every ``every_epochs``-th epoch,
  ``rounds`` times, removing the same fraction of the remaining weights each round (Han et al.
  2015; Frankle & Carbin 2019): after round k the sparsity is 1 - (1 - s) ** (k / rounds).

``rewind_step`` (PruningCallback): keep a copy of the weights as they were after that many steps,
and after every pruning event reset the surviving weights to that copy (lottery-ticket rewinding,
Frankle et al. 2020). BatchNorm statistics and the optimizer state are not rewound.

What this file leaves out: the mask math (masks.py) and attaching (prune.py).
"""
import numpy as np

from tinyeff.compress.prune import get_mask, prune_to_sparsity, sparsity_report
from tinyeff.train.callbacks import Callback


class OneShot:
    """Prune to ``sparsity`` once, at step ``at_step`` (default 0: before training)."""

    def __init__(self, sparsity, at_step=0):
        _check_fraction(sparsity, "sparsity")
        self.final_sparsity, self.at_step = sparsity, at_step

    def should_prune(self, step):
        return step == self.at_step

    def sparsity(self, step):
        return self.final_sparsity if step >= self.at_step else 0.0


class ConstantSparsity:
    """TF-MOT's ConstantSparsity: ``sparsity`` at every ``frequency``-th step from begin_step."""

    def __init__(self, sparsity, begin_step=0, end_step=-1, frequency=100):
        _check_fraction(sparsity, "sparsity")
        _check_steps(begin_step, end_step, frequency)
        self.final_sparsity, self.begin_step, self.end_step = sparsity, begin_step, end_step
        self.frequency = frequency

    def should_prune(self, step):
        return _in_window(step, self.begin_step, self.end_step, self.frequency)

    def sparsity(self, step):
        return self.final_sparsity if step >= self.begin_step else 0.0


class PolynomialDecay:
    """Zhu & Gupta's gradual schedule: fast pruning early, slower as the target is approached.

    Args:
        initial_sparsity, final_sparsity: s_i and s_f, fractions in [0, 1].
        begin_step, end_step: t0 and t0 + n * dt (global batch counts).
        power: the exponent (3 in the paper).
        frequency: dt, prune every this many steps between begin_step and end_step.
    """

    def __init__(self, initial_sparsity, final_sparsity, begin_step, end_step, power=3, frequency=100):
        _check_fraction(initial_sparsity, "initial_sparsity")
        _check_fraction(final_sparsity, "final_sparsity")
        _check_steps(begin_step, end_step, frequency)
        if end_step <= begin_step:
            raise ValueError(f"PolynomialDecay: end_step={end_step} must be after begin_step={begin_step}")
        self.initial_sparsity, self.final_sparsity = initial_sparsity, final_sparsity
        self.begin_step, self.end_step, self.power, self.frequency = begin_step, end_step, power, frequency

    def should_prune(self, step):
        return _in_window(step, self.begin_step, self.end_step, self.frequency) or step == self.end_step

    def sparsity(self, step):
        if step < self.begin_step:
            return 0.0
        progress = min(1.0, (step - self.begin_step) / (self.end_step - self.begin_step))
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1 - progress) ** self.power


class Iterative:
    """Prune at epochs 0, every_epochs, 2 * every_epochs, ... for ``rounds`` rounds, fine-tuning between."""

    def __init__(self, final_sparsity, every_epochs=1, rounds=3):
        _check_fraction(final_sparsity, "final_sparsity")
        if every_epochs < 1 or rounds < 1:
            raise ValueError(f"Iterative: every_epochs={every_epochs} and rounds={rounds} must be >= 1")
        self.final_sparsity, self.every_epochs, self.rounds = final_sparsity, every_epochs, rounds

    def round_at_epoch(self, epoch):
        """The round (1-based) that starts at ``epoch``, or 0 if none does."""
        k = epoch // self.every_epochs + 1
        return k if epoch % self.every_epochs == 0 and k <= self.rounds else 0

    def sparsity_after_round(self, k):
        return 1.0 - (1.0 - self.final_sparsity) ** (k / self.rounds)


def _check_fraction(value, name):
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"pruning schedule: {name}={value} must be a fraction in [0, 1]")


def _check_steps(begin_step, end_step, frequency):
    if begin_step < 0 or frequency < 1:
        raise ValueError(f"pruning schedule: begin_step={begin_step} must be >= 0 and frequency={frequency} >= 1")


def _in_window(step, begin, end, frequency):
    return step >= begin and (end < 0 or step <= end) and (step - begin) % frequency == 0


class PruningCallback(Callback):
    """Apply a schedule during ``fit``: ``fit(..., callbacks=[PruningCallback(PolynomialDecay(...))])``.

    Args:
        schedule: OneShot, ConstantSparsity, PolynomialDecay or Iterative.
        method, layers, **prune_kwargs: passed to ``prune_to_sparsity`` ("global" by default).
        rewind_step: if not None, rewind surviving weights to their values at this step after every
            pruning event (lottery-ticket style); 0 means the weights at the start of training.

    Adds ``sparsity`` (measured, conv + linear weights) to ``state.logs`` every epoch.
    """

    def __init__(self, schedule, method="global", layers=None, rewind_step=None, **prune_kwargs):
        self.schedule, self.method, self.layers = schedule, method, layers
        self.rewind_step, self.prune_kwargs = rewind_step, prune_kwargs
        self.rewind_state = None
        self.events = []          # (step, target sparsity) of every pruning event

    def _apply(self, state, sparsity):
        if self.rewind_step is not None and self.rewind_state is None:
            self._snapshot(state)           # pruning before the rewind point: rewind to now
        prune_to_sparsity(state.model, sparsity, self.method, self.layers, optimizer=state.optimizer,
                          **self.prune_kwargs)
        self.events.append((state.step, sparsity))
        if self.rewind_state is not None:
            self._rewind(state)

    def _snapshot(self, state):
        self.rewind_state = {id(p): p.data.copy() for p in state.model.parameters()}

    def _rewind(self, state):
        for _, module in state.model.named_modules():
            for name, p in module._parameters.items():
                if p is None or id(p) not in self.rewind_state:
                    continue
                mask = get_mask(module, name)
                p.data[...] = self.rewind_state[id(p)] if mask is None else self.rewind_state[id(p)] * mask

    def on_train_begin(self, state):
        if self.rewind_step == state.step:
            self._snapshot(state)
        if not isinstance(self.schedule, Iterative) and self.schedule.should_prune(state.step):
            self._apply(state, self.schedule.sparsity(state.step))

    def on_epoch_begin(self, state):
        if isinstance(self.schedule, Iterative):
            k = self.schedule.round_at_epoch(state.epoch)
            if k:
                self._apply(state, self.schedule.sparsity_after_round(k))

    def on_batch_end(self, state):
        if self.rewind_step is not None and self.rewind_state is None and state.step == self.rewind_step:
            self._snapshot(state)
        if not isinstance(self.schedule, Iterative) and self.schedule.should_prune(state.step):
            self._apply(state, self.schedule.sparsity(state.step))

    def on_epoch_end(self, state):
        state.logs["sparsity"] = sparsity_report(state.model)["total"]["sparsity"]


def polynomial_for_fit(final_sparsity, steps_per_epoch, epochs, initial_sparsity=0.0, begin_epoch=0,
                       end_fraction=0.75, frequency=None):
    """A PolynomialDecay that reaches ``final_sparsity`` after ``end_fraction`` of training, so the
    remaining epochs fine-tune at the final sparsity. Steps are derived from epochs."""
    begin = begin_epoch * steps_per_epoch
    end = max(begin + 1, int(np.ceil(end_fraction * epochs * steps_per_epoch)))
    frequency = frequency or max(1, (end - begin) // 20)
    return PolynomialDecay(initial_sparsity, final_sparsity, begin, end, 3, frequency)
