"""Knowledge distillation (Hinton, Vinyals & Dean 2015): train a small student on a big teacher's soft labels.

The one idea: a teacher's full output distribution says more than the label does ("this shirt looks
a bit like a pullover"). Softening both distributions with a temperature T > 1 exposes those small
probabilities, and the student is trained on

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, y)

The T^2 factor keeps the soft term's gradient the same size as T changes (its gradient scales as
1/T^2, section 2 of the paper), so alpha means the same thing at every temperature.

``DistillationLoss`` plugs into ``train.fit(loss_fn=...)``. The teacher runs in eval mode under
``no_grad`` (no graph, running statistics untouched). Without augmentation the teacher's logits
for a training image never change, so they can be computed once up front (``precompute=split``)
and looked up by the image's bytes, which removes the teacher's cost from every epoch.

What this file leaves out: feature-map (hint) distillation and ensembles of teachers.
"""
import numpy as np

from tinyeff import ops
from tinyeff.tensor import Tensor, no_grad


def soft_targets(teacher_logits, temperature):
    """softmax(teacher_logits / T) in float32 (at least); a constant ndarray (N, K)."""
    z = np.asarray(teacher_logits)
    z = z.astype(np.promote_types(z.dtype, np.float32)) / temperature
    z = z - z.max(axis=1, keepdims=True)           # no overflow in exp
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _check_args(temperature, alpha):
    if not temperature > 0:
        raise ValueError(f"distillation: temperature={temperature} must be positive (typical: 2 to 8)")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation: alpha={alpha} must be in [0, 1]")


def distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9):
    """Hinton's loss for one batch.

    Args:
        student_logits: Tensor (N, K); 16-bit logits are cast to float32 first (the loss is a reduction).
        teacher_logits: ndarray or Tensor (N, K), treated as a constant.
        labels: int64 ndarray (N,).
        temperature: T > 0 used for both softmaxes.
        alpha: weight of the soft (teacher) term, in [0, 1]; 1 - alpha weights the hard-label CE.
    Returns:
        scalar Tensor (float32 or float64, following the student's logits).
    Raises:
        ValueError: bad temperature/alpha, or teacher and student shapes differ.
    """
    _check_args(temperature, alpha)
    teacher = teacher_logits.data if isinstance(teacher_logits, Tensor) else np.asarray(teacher_logits)
    if teacher.shape != student_logits.shape:
        raise ValueError(f"distillation_loss: teacher logits have shape {teacher.shape} but the student's are "
                         f"{student_logits.shape}; teacher and student must predict the same classes")
    work = np.promote_types(student_logits.dtype, np.float32)
    s = ops.cast(student_logits, work) if student_logits.dtype != work else student_logits
    p = soft_targets(teacher, temperature).astype(work)            # (N, K) teacher probabilities
    log_q = ops.log_softmax(s * (1.0 / temperature), axis=1)       # (N, K) student log-probabilities
    soft = ops.kl_div(log_q, p) * (alpha * temperature * temperature)
    if alpha == 1.0:
        return soft
    return soft + ops.cross_entropy(s, labels) * (1.0 - alpha)


class DistillationLoss:
    """A ``loss_fn(model, x, y, state)`` for ``train.fit`` that distills ``teacher`` into the model.

    Args:
        teacher: a trained Module with the same number of outputs as the student. It must accept
            the batches ``fit`` produces, so give the student the teacher's preprocessing
            (``student.preprocess = teacher.preprocess``) before calling ``fit``.
        temperature, alpha: see ``distillation_loss``.
        precompute: optional training ``Split``; its teacher logits are computed once and reused.
            Batches that are not found (augmented images) fall back to running the teacher.
        batch_size: batch size for the precomputation.
    Attributes:
        hits, misses: images served from the precomputed logits / by running the teacher.
    """

    def __init__(self, teacher, temperature=4.0, alpha=0.9, precompute=None, batch_size=256):
        _check_args(temperature, alpha)
        self.teacher, self.temperature, self.alpha = teacher, float(temperature), float(alpha)
        self.hits = self.misses = 0
        self._cache = {}
        if precompute is not None:
            self._precompute(precompute.images, batch_size)

    def _preprocess(self):
        from tinyeff.data.transforms import make_preprocess
        return make_preprocess(getattr(self.teacher, "preprocess", None))

    def _precompute(self, images, batch_size):
        from tinyeff.train import predict
        preprocess = self._preprocess()
        logits = predict(self.teacher, images, batch_size, preprocess)       # (N, K) float32
        for start in range(0, len(images), batch_size):
            x = np.asarray(preprocess(images[start:start + batch_size]), dtype=np.float32)
            for row, key in enumerate(_row_keys(x)):
                self._cache[key] = logits[start + row]

    def teacher_logits(self, x):
        """Teacher logits (N, K) float32 for the batch ``x`` (Tensor or ndarray), cached where possible."""
        x = x.data if isinstance(x, Tensor) else np.asarray(x)
        if self._cache:
            rows = [self._cache.get(key) for key in _row_keys(x)]
            if all(r is not None for r in rows):
                self.hits += len(rows)
                return np.stack(rows)
        self.misses += len(x)
        was_training = self.teacher.training
        self.teacher.eval()
        try:
            with no_grad():
                return np.asarray(self.teacher(Tensor(x.astype(np.float32))).data, dtype=np.float32)
        finally:
            self.teacher.train(was_training)

    def __call__(self, model, x, y, state=None):
        teacher = self.teacher_logits(x)
        return distillation_loss(model(x), teacher, y, self.temperature, self.alpha)


def _row_keys(x):
    # Keys are taken after rounding to float16, so a float32 batch and the same batch cast to
    # float16 by a mixed-precision policy find the same entries.
    x16 = np.ascontiguousarray(x, dtype=np.float16).reshape(len(x), -1)
    return [hash(row.tobytes()) for row in x16]


def distill(teacher, student, train_split, test_split=None, *, temperature=4.0, alpha=0.9, precompute=True,
            **fit_kwargs):
    """Train ``student`` on ``train_split`` with Hinton's loss against ``teacher``, through ``train.fit``.

    The student takes the teacher's preprocessing, so both see the same batches. Without
    augmentation, the teacher's logits are computed once (``precompute``) instead of every step.

    Args:
        teacher: a trained model with a ``preprocess`` record (as ``tinyeff.io.load`` or ``fit`` leave).
        student: an untrained model with the same number of classes.
        temperature, alpha: see ``distillation_loss``.
        fit_kwargs: passed to ``train.fit`` (epochs, batch_size, lr, seed, precision, out_dir, ...).
    Returns:
        ``fit``'s metrics plus ``distillation``: temperature, alpha, the teacher's test accuracy and
        how many teacher logits came from the cache.
    Raises:
        ValueError: the teacher has no preprocessing record.
    """
    from tinyeff import train
    if getattr(teacher, "preprocess", None) is None:
        raise ValueError("distill: the teacher has no preprocessing record; load it with tinyeff.io.load "
                         "or train it with tinyeff.train.fit, which both set teacher.preprocess")
    student.preprocess = teacher.preprocess
    cache = train_split if precompute and not fit_kwargs.get("augment") else None
    loss_fn = DistillationLoss(teacher, temperature, alpha, precompute=cache)
    metrics = train.fit(student, train_split, test_split, loss_fn=loss_fn, **fit_kwargs)
    metrics["distillation"] = {
        "temperature": temperature, "alpha": alpha,
        "teacher_arch": getattr(teacher, "arch", None),
        "teacher_test_accuracy": train.evaluate(teacher, test_split)["accuracy"] if test_split is not None else None,
        "teacher_logits_cached": loss_fn.hits, "teacher_logits_computed": loss_fn.misses,
    }
    if fit_kwargs.get("out_dir"):
        import os
        train.write_json(os.path.join(fit_kwargs["out_dir"], "metrics.json"), metrics)
    return metrics
