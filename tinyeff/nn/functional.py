"""Functional forms of the ops, PyTorch-style: ``import tinyeff.nn.functional as F``."""
from tinyeff.ops import (avg_pool2d, batch_norm, conv2d, cross_entropy, dropout, elu, flatten,  # noqa: F401
                         global_avg_pool2d, kl_div, leaky_relu, linear, log_softmax, max_pool2d, mse_loss,
                         relu, sigmoid, softmax, tanh)
