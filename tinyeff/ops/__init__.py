"""Differentiable ops: each a NumPy forward plus a backward that returns one gradient per input."""
from tinyeff.ops.elementwise import (add, cast, div, elu, exp, leaky_relu, log, mul, neg, pow, relu,
                                     relu6, sigmoid, silu, sub, tanh)
from tinyeff.ops.reduce import max, mean, sum
from tinyeff.ops.movement import flatten, getitem, reshape, transpose
from tinyeff.ops.linalg import linear, matmul
from tinyeff.ops.conv import conv2d
from tinyeff.ops.pool import avg_pool2d, global_avg_pool2d, max_pool2d
from tinyeff.ops.norm import batch_norm
from tinyeff.ops.loss import cross_entropy, kl_div, log_softmax, mse_loss, softmax
from tinyeff.ops.dropout import dropout

__all__ = ["add", "avg_pool2d", "batch_norm", "cast", "conv2d", "cross_entropy", "div", "dropout", "elu",
           "exp", "flatten", "getitem", "global_avg_pool2d", "kl_div", "leaky_relu", "linear", "log",
           "log_softmax", "matmul", "max", "max_pool2d", "mean", "mse_loss", "mul", "neg", "pow", "relu",
           "relu6", "reshape", "sigmoid", "silu", "softmax", "sub", "sum", "tanh", "transpose"]
