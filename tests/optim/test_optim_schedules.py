"""Learning-rate schedules: values at chosen steps, written out from their formulas."""
import math

import numpy as np
import pytest

from tinyeff import nn
from tinyeff.optim import SGD, CosineAnnealingLR, ExponentialLR, LinearWarmup, StepLR


def optimizer(lr=1.0):
    return SGD([nn.Parameter(np.zeros(1))], lr=lr)


def lrs(schedule, steps):
    return [schedule.step() for _ in range(steps)]


def test_step_lr_drops_by_gamma_every_step_size():
    opt = optimizer(0.5)
    got = lrs(StepLR(opt, step_size=3, gamma=0.1), 7)
    np.testing.assert_allclose(got, [0.5, 0.5, 0.05, 0.05, 0.05, 0.005, 0.005], rtol=1e-12)
    assert opt.lr == pytest.approx(0.005)


def test_exponential_lr():
    got = lrs(ExponentialLR(optimizer(2.0), gamma=0.5), 3)
    np.testing.assert_allclose(got, [1.0, 0.5, 0.25], rtol=1e-12)


def test_cosine_annealing_values():
    sched = CosineAnnealingLR(optimizer(1.0), T_max=10, eta_min=0.1)
    assert sched.lr_at(0) == pytest.approx(1.0)
    assert sched.lr_at(5) == pytest.approx(0.55)                 # halfway: (base + eta_min) / 2
    assert sched.lr_at(10) == pytest.approx(0.1)
    assert sched.lr_at(2) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 0.2)) / 2)
    got = lrs(sched, 10)
    assert got[4] == pytest.approx(0.55) and got[-1] == pytest.approx(0.1)


def test_cosine_annealing_stays_at_eta_min_after_t_max():
    sched = CosineAnnealingLR(optimizer(1.0), T_max=4, eta_min=0.01)
    assert sched.lr_at(9) == pytest.approx(0.01)


def test_linear_warmup_ramps_then_holds_base():
    opt = optimizer(0.4)
    sched = LinearWarmup(opt, warmup_steps=4)
    assert opt.lr == pytest.approx(0.1)                           # set at construction: base / 4
    np.testing.assert_allclose(lrs(sched, 5), [0.2, 0.3, 0.4, 0.4, 0.4], rtol=1e-12)


def test_linear_warmup_then_cosine():
    opt = optimizer(1.0)
    sched = LinearWarmup(opt, warmup_steps=2, then=CosineAnnealingLR(opt, T_max=4))
    assert opt.lr == pytest.approx(0.5)
    got = lrs(sched, 6)
    # t=1: warm-up 2/2; t=2..6: cosine at 0..4 = 1, (1+cos(pi/4))/2, 0.5, (1-cos(pi/4))/2, 0
    c = math.cos(math.pi / 4)
    np.testing.assert_allclose(got, [1.0, 1.0, (1 + c) / 2, 0.5, (1 - c) / 2, 0.0], rtol=1e-12, atol=1e-15)


def test_schedule_writes_lr_into_the_optimizer_used_by_step():
    p = nn.Parameter(np.array([1.0]))
    opt = SGD([p], lr=1.0)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    sched.step()                                                  # lr 0.5
    (p * 2.0).sum().backward()
    opt.step()
    np.testing.assert_allclose(p.data, [0.0])                     # 1 - 0.5 * 2
