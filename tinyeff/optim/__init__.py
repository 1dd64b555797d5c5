"""Optimizers and learning-rate schedules."""
from tinyeff.optim.optimizer import Optimizer
from tinyeff.optim.sgd import SGD
from tinyeff.optim.adam import Adam, AdamW
from tinyeff.optim.schedules import CosineAnnealingLR, ExponentialLR, LinearWarmup, LRSchedule, StepLR

__all__ = ["Adam", "AdamW", "CosineAnnealingLR", "ExponentialLR", "LRSchedule", "LinearWarmup",
           "Optimizer", "SGD", "StepLR"]
