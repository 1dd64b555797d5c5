"""Stopping training at the first non-finite loss or parameter.

A learning rate that is too high, or one NaN pixel, turns the weights into NaN within a step, and
every later step, evaluation and checkpoint carries the NaN on: the run "succeeds" and overwrites
the last good checkpoint with garbage. ``check_step`` runs after every optimizer step and raises
``TrainingDiverged`` naming the epoch, the step and the first bad tensor; ``fit`` adds which
checkpoint is the last good state and leaves it untouched.

A step that mixed-precision loss scaling skipped on purpose (an inf/NaN in the float16 gradients
is how dynamic loss scaling finds its scale) is not a divergence: the weights did not change, so
it is not checked.
"""
import math

import numpy as np

from tinyeff.errors import TrainingDiverged


def first_nonfinite_parameter(model):
    """The name of the first parameter holding NaN or Inf, or None."""
    for name, p in model.named_parameters():
        if not np.isfinite(p.data).all():
            return name
    return None


def check_step(model, loss_value, state, lr):
    """Raise TrainingDiverged if the loss of the step just taken, or any parameter, is not finite."""
    bad = None if math.isfinite(loss_value) else f"the loss is {loss_value}"
    if bad is None:
        name = first_nonfinite_parameter(model)
        bad = None if name is None else f"parameter {name!r} holds NaN/Inf (the loss still looked finite: {loss_value:.4g})"
    if bad is not None:
        raise TrainingDiverged(f"training diverged at epoch {state.epoch + 1}, step {state.step}: {bad}; "
                               f"lower the learning rate (it is {lr:g}) or check the inputs for NaN/Inf")


def check_evaluation(result, state, lr):
    """Raise TrainingDiverged if the end-of-epoch test loss is not finite (weights grown too large)."""
    if not math.isfinite(result["loss"]) and result["n"]:
        raise TrainingDiverged(f"training diverged at epoch {state.epoch + 1}: the test loss is {result['loss']} "
                               f"(the weights grew until the outputs overflow); lower the learning rate "
                               f"(it is {lr:g}) or check the inputs for NaN/Inf")
