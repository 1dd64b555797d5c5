"""Training and evaluation: ``fit`` runs epochs of mini-batch descent, ``evaluate`` scores a split.

The one idea: a training loop is a few lines (forward, loss, backward, step), and everything else
attaches through three plug points, so pruning schedules, distillation and mixed precision never
edit the loop (``loop.py``):

- ``callbacks``: objects with ``on_train_begin/on_epoch_begin/on_batch_end/on_epoch_end/
  on_train_end(state)`` (see ``Callback``); pruning schedules live here.
- ``loss_fn(model, x, y, state) -> Tensor``: replaces cross-entropy; distillation lives here.
- ``precision``: ``prepare(model)``, ``forward_input(x) -> Tensor``, ``backward_and_step(loss,
  optimizer) -> bool`` and ``report() -> dict``; mixed precision with loss scaling lives here.

With ``out_dir``, every epoch ends with an atomic checkpoint (model, optimizer state, history), and
``resume=True`` continues from it, so an interrupted run loses at most one epoch. The batch order of
epoch e depends only on (seed, e), so a resumed run sees the same batches it would have seen.

Files: ``loop.py`` (fit), ``evaluation.py`` (predict, evaluate), ``callbacks.py`` (Callback,
TrainState), ``checkpoint.py`` (model file, checkpoints, metrics JSON); preprocessing recorded with
a model is ``tinyeff.data.transforms``.
"""
from tinyeff.data.transforms import make_augment, make_preprocess, preprocess_config
from tinyeff.train.callbacks import Callback, TrainState
from tinyeff.train.checkpoint import save_model, versions, write_json
from tinyeff.train.evaluation import evaluate, predict
from tinyeff.train.loop import Float32Policy, default_loss, fit, make_optimizer, make_schedule

__all__ = ["Callback", "Float32Policy", "TrainState", "default_loss", "evaluate", "fit", "make_augment",
           "make_optimizer", "make_preprocess", "make_schedule", "predict", "preprocess_config", "save_model",
           "versions", "write_json"]
