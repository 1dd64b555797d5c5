"""Scoring a model: ``predict`` (logits for uint8 images) and ``evaluate`` (accuracy, loss, confusion).

Both run in eval mode without building a graph, and apply the preprocessing the model recorded
(``model.preprocess``) unless given another; the integer models of ``tinyeff.quant`` run unchanged.
"""
import time

import numpy as np

from tinyeff.data.transforms import make_preprocess
from tinyeff.kernels.blas import blas_threads
from tinyeff.ops.loss import cross_entropy
from tinyeff.tensor import Tensor, no_grad


def predict(model, images, batch_size=256, preprocess=None):
    """Logits (N, K) float32 for uint8 ``images`` (N, C, H, W), in eval mode and without a graph.

    Raises:
        ValueError: an image is NaN/Inf after preprocessing (float ``images``, or a bad preprocessing).
    """
    preprocess = preprocess or make_preprocess(getattr(model, "preprocess", None))
    was_training = model.training
    model.eval()
    outputs = []
    with no_grad(), blas_threads(1):
        for start in range(0, len(images), batch_size):
            x = np.asarray(preprocess(images[start:start + batch_size]), dtype=np.float32)
            _refuse_nonfinite(x, start)
            outputs.append(np.asarray(model(Tensor(x)).data, dtype=np.float32))
    model.train(was_training)
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)


def _refuse_nonfinite(x, start):
    """A NaN input would give NaN logits, or, where pooling drops it, plausible ones: say so instead."""
    bad = ~np.isfinite(x)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), x.shape)
        raise ValueError(f"predict: image {start + int(first[0])} holds {int(bad[first[0]].sum()):,} NaN/Inf "
                         f"value(s) after preprocessing (first at pixel {tuple(int(i) for i in first[1:])}); "
                         "clean or drop such images (a standardisation with zero std gives Inf)")


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
