"""Learning-rate schedules. Each computes the rate at step ``t`` from the optimizer's base rate;
``step()`` advances ``t`` and writes the new rate into the optimizer. Call it once per epoch (or
once per batch, with step counts instead of epoch counts in the arguments)."""
import math


class LRSchedule:
    def __init__(self, optimizer):
        self.optimizer, self.base_lr, self.t = optimizer, optimizer.lr, 0

    def factor(self, t):
        return 1.0

    def lr_at(self, t):
        return self.base_lr * self.factor(t)

    def step(self):
        self.t += 1
        self.optimizer.lr = self.lr_at(self.t)
        return self.optimizer.lr


class StepLR(LRSchedule):
    """Multiply the rate by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def factor(self, t):
        return self.gamma ** (t // self.step_size)


class ExponentialLR(LRSchedule):
    """lr = base * gamma^t."""

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer)
        self.gamma = gamma

    def factor(self, t):
        return self.gamma ** t


class CosineAnnealingLR(LRSchedule):
    """lr = eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2 (Loshchilov & Hutter 2017)."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        self.T_max, self.eta_min = T_max, eta_min

    def lr_at(self, t):
        t = min(t, self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearWarmup(LRSchedule):
    """Ramp linearly from base/warmup_steps to base over ``warmup_steps``, then follow ``then``."""

    def __init__(self, optimizer, warmup_steps, then=None):
        super().__init__(optimizer)
        self.warmup_steps, self.then = warmup_steps, then
        optimizer.lr = self.lr_at(0)

    def lr_at(self, t):
        if t < self.warmup_steps:
            return self.base_lr * (t + 1) / self.warmup_steps
        return self.then.lr_at(t - self.warmup_steps) if self.then else self.base_lr
