"""Knowledge distillation: the loss against its formula, its gradient, the teacher's isolation, caching."""
import numpy as np
import pytest

from tinyeff import nn, ops, train
from tinyeff.compress.distill import DistillationLoss, distillation_loss, soft_targets
from tinyeff.data import load
from tinyeff.tensor import Tensor
from tinyeff.testing import check_grad


def numpy_hinton(student, teacher, labels, t, alpha):
    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    p, log_q = np.exp(log_softmax(teacher / t)), log_softmax(student / t)
    kl = (p * (np.log(p) - log_q)).sum() / len(student)
    ce = -log_softmax(student)[np.arange(len(student)), labels].mean()
    return alpha * t * t * kl + (1 - alpha) * ce


def tiny_net(seed_value):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    rng = np.random.default_rng(seed_value)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape).astype(np.float32) * 0.5
    return model


@pytest.mark.parametrize("t,alpha", [(1.0, 0.5), (4.0, 0.9), (2.5, 1.0)])
def test_distillation_loss_matches_the_formula(rng, t, alpha):
    student, teacher = rng.standard_normal((6, 5)), rng.standard_normal((6, 5)) * 3
    labels = rng.integers(0, 5, 6)
    loss = distillation_loss(Tensor(student), teacher, labels, t, alpha)
    np.testing.assert_allclose(loss.item(), numpy_hinton(student, teacher, labels, t, alpha), rtol=1e-12)


def test_alpha_zero_is_plain_cross_entropy(rng):
    student, labels = rng.standard_normal((4, 3)), rng.integers(0, 3, 4)
    loss = distillation_loss(Tensor(student), rng.standard_normal((4, 3)), labels, 4.0, 0.0)
    np.testing.assert_allclose(loss.item(), ops.cross_entropy(Tensor(student), labels).item(), rtol=1e-12)


def test_student_matching_teacher_has_zero_soft_loss(rng):
    logits = rng.standard_normal((5, 4))
    loss = distillation_loss(Tensor(logits), logits, rng.integers(0, 4, 5), 3.0, 1.0)
    assert abs(loss.item()) < 1e-12


@pytest.mark.parametrize("t", [1.0, 4.0])
def test_distillation_loss_grad(rng, t):
    teacher, labels = rng.standard_normal((3, 4)) * 2, rng.integers(0, 4, 3)
    check_grad(lambda s: distillation_loss(s, teacher, labels, t, 0.7), rng.standard_normal((3, 4)))


def test_float16_student_logits_give_a_float32_loss(rng):
    student = Tensor(rng.standard_normal((4, 3)).astype(np.float16), requires_grad=True)
    loss = distillation_loss(student, rng.standard_normal((4, 3)), rng.integers(0, 3, 4))
    loss.backward()
    assert loss.dtype == np.float32 and student.grad.dtype == np.float16


def test_soft_targets_are_distributions_and_flatten_with_temperature(rng):
    z = rng.standard_normal((3, 5)) * 4
    sharp, soft = soft_targets(z, 1.0), soft_targets(z, 8.0)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    assert (soft.max(axis=1) < sharp.max(axis=1)).all()


@pytest.mark.parametrize("kwargs,match", [({"temperature": 0.0}, "temperature"), ({"alpha": 1.5}, "alpha")])
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistillationLoss(tiny_net(0), **kwargs)


def test_shape_mismatch_names_both_shapes(rng):
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        distillation_loss(Tensor(rng.standard_normal((2, 4))), np.zeros((2, 3)), np.zeros(2, np.int64))


def test_teacher_runs_in_eval_mode_without_gradients(rng):
    teacher, student = tiny_net(1), tiny_net(2)
    running_mean = teacher[2].running_mean.copy()
    loss_fn = DistillationLoss(teacher, temperature=4.0, alpha=0.9)
    x = Tensor(rng.standard_normal((5, 1, 8, 8)).astype(np.float32))
    loss_fn(student, x, rng.integers(0, 3, 5)).backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in student.parameters())
    assert teacher.training                                            # mode restored
    np.testing.assert_array_equal(teacher[2].running_mean, running_mean)  # BN statistics untouched


def test_precomputed_teacher_logits_match_live_ones():
    tr, _ = load("synthetic", n_train=40, n_test=0, shape=(1, 8, 8), num_classes=3)
    teacher = tiny_net(3)
    teacher.preprocess = train.preprocess_config(tr)
    cached = DistillationLoss(teacher, precompute=tr, batch_size=16)
    live = DistillationLoss(teacher)
    x = np.asarray(train.make_preprocess(teacher.preprocess)(tr.images[[5, 17, 33]]), np.float32)
    np.testing.assert_allclose(cached.teacher_logits(x), live.teacher_logits(x), rtol=1e-5, atol=1e-6)
    cached.teacher_logits(x.astype(np.float16))       # a float16 batch finds the same entries
    assert cached.hits == 6 and cached.misses == 0 and live.misses == 3


def test_fit_with_distillation_trains_the_student():
    tr, te = load("synthetic", n_train=96, n_test=48, shape=(1, 8, 8), num_classes=3)
    teacher = tiny_net(4)
    teacher.preprocess = train.preprocess_config(tr)
    student = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    student.preprocess = teacher.preprocess
    loss_fn = DistillationLoss(teacher, precompute=tr)
    metrics = train.fit(student, tr, te, epochs=2, batch_size=32, loss_fn=loss_fn, progress=False)
    assert len(metrics["history"]["train_loss"]) == 2 and loss_fn.misses == 0 and loss_fn.hits == 2 * 96


def test_cli_distill_writes_student_and_baseline(tmp_path, capsys):
    from tinyeff import io, models
    from tinyeff.cli import main
    tr, te = load("synthetic")
    teacher = models.create("mlp", in_channels=1, input_size=28, num_classes=10, hidden=(32,))
    train.fit(teacher, tr, epochs=1, progress=False)
    io.save(teacher, tmp_path / "teacher.npz")
    code = main(["distill", "--teacher", str(tmp_path / "teacher.npz"), "--student", "mlp", "--data", "synthetic",
                 "--epochs", "1", "--temperature", "2", "--alpha", "0.5", "--baseline", "--no-progress",
                 "--out", str(tmp_path / "kd")])
    assert code == 0
    assert (tmp_path / "kd" / "model.npz").exists() and (tmp_path / "kd" / "baseline" / "metrics.json").exists()
    assert "distillation gain" in capsys.readouterr().out
