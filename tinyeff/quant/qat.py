"""Quantization-aware training: train through fake-quant, then convert to the same integer model as PTQ.

    prepared = prepare_qat(model)                     # fold BN, fake-quant weights and activations
    fit(prepared, train, test, epochs=3, lr=1e-4, callbacks=[FreezeObservers(after_epochs=2)])
    qmodel = convert(prepared)                        # integer-only QuantizedModel

Weights: a parameter transform (key ``convert.QAT_KEY``) rounds each conv/linear weight to its
symmetric int8 per-channel grid every forward; the grid follows the weight (min-max of the current
values). Activations: every quantization point of ``prepare.py`` has a moving-average min-max
observer and rounds its output to that grid. Both use the straight-through estimator
(qparams.fake_quant), so gradients reach the float weights. After ``after_epochs`` epochs the
observers freeze, so the last epochs train against the exact grids the integer model will use.

BN folding: BN is folded into the convs before fine-tuning (its statistics frozen at their trained
values), so fake-quant sees exactly the weights that will be quantized. That is the "fold, then
fine-tune" variant; the learned-BN variant of Jacob et al. section 3.2 is left out.
"""
import numpy as np

from tinyeff import nn
from tinyeff.quant.convert import QAT_KEY
from tinyeff.quant.observers import make_observer
from tinyeff.quant.prepare import observed_modules, prepare
from tinyeff.quant.qparams import fake_quant
from tinyeff.train.callbacks import Callback

__all__ = ["prepare_qat", "freeze_observers", "FreezeObservers", "weight_fake_quant"]


def weight_fake_quant(per_channel=True):
    """A parameter transform: symmetric int8 fake-quant of a weight, scale from its current min-max."""
    def transform(w):
        obs = make_observer("minmax", dtype="int8", symmetric=True, per_channel=per_channel, axis=0)
        obs.observe(w.data)
        scale, _ = obs.qparams()
        scale = np.broadcast_to(np.asarray(scale, np.float32), (w.shape[0],))
        return fake_quant(w, scale, 0, "int8", axis=0)
    return transform


def prepare_qat(model, per_channel=True, momentum=0.01):
    """A train-mode copy of ``model`` with BN folded and fake-quant on weights and activations.

    Returns:
        PreparedModel in train mode; pass it to ``fit`` and then to ``convert``.
    """
    prepared = prepare(model, "moving-average", fake_quant=True, momentum=momentum)
    for module in prepared.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.add_param_transform("weight", QAT_KEY, weight_fake_quant(per_channel))
    return prepared.train()


def freeze_observers(model, frozen=True):
    """Stop (or restart) every activation observer's range updates; return how many changed."""
    observed = observed_modules(model)
    for _, module in observed:
        module.observer.frozen = frozen
    return len(observed)


class FreezeObservers(Callback):
    """Freeze the activation observers at the end of epoch ``after_epochs`` (1-based)."""

    def __init__(self, after_epochs=1):
        self.after_epochs = after_epochs

    def on_epoch_end(self, state):
        if state.epoch + 1 >= self.after_epochs:
            freeze_observers(state.model)
