"""Neural-network building blocks with PyTorch's names and weight layouts."""
from tinyeff.nn.module import HookHandle, Module, Parameter
from tinyeff.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Linear
from tinyeff.nn.simple import (ELU, AdaptiveAvgPool2d, AvgPool2d, Dropout, Flatten, Identity, LeakyReLU,
                               MaxPool2d, ReLU, ReLU6, Sequential, Sigmoid, SiLU, Tanh)
from tinyeff.nn import functional, init  # noqa: F401

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "ELU",
           "Flatten", "HookHandle", "Identity", "LeakyReLU", "Linear", "MaxPool2d", "Module", "Parameter",
           "ReLU", "ReLU6", "Sequential", "Sigmoid", "SiLU", "Tanh", "functional", "init"]
