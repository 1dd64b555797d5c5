"""The layers: thin Modules that hold parameters and call one op each.

Defaults: Conv2d and Linear weights use He (Kaiming) normal init, fan_in, for ReLU networks; biases
start at zero. BatchNorm starts as the identity (weight 1, bias 0, running mean 0, running var 1).
"""
from tinyeff import ops
from tinyeff.nn import init
from tinyeff.nn.module import Module, Parameter


def _pair_int(value, name):
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"{name}: only square values are supported, got {value}")
        value = value[0]
    return int(value)


class Conv2d(Module):
    """2-D convolution over NCHW input; weight (out_channels, in_channels/groups, k, k)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        k = _pair_int(kernel_size, "Conv2d kernel_size")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
        self.stride, self.padding = _pair_int(stride, "Conv2d stride"), _pair_int(padding, "Conv2d padding")
        self.dilation, self.groups = _pair_int(dilation, "Conv2d dilation"), groups
        self.weight = Parameter(init.kaiming_normal((out_channels, in_channels // groups, k, k)))
        self.bias = Parameter(init.zeros((out_channels,))) if bias else None

    def forward(self, x, relu=False, pool=1):
        """``relu=True``: relu(conv(x)); ``pool > 1``: then a ``pool`` x ``pool`` max-pool; both
        fused when no gradient is recorded (Sequential asks)."""
        bias = self.param("bias") if self.bias is not None else None
        return ops.conv2d(x, self.param("weight"), bias, self.stride, self.padding, self.dilation,
                          self.groups, relu=relu, pool=pool)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}" + (f", groups={self.groups}" if self.groups > 1 else ""))


class Linear(Module):
    """y = x @ weight.T + bias; weight (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(init.kaiming_normal((out_features, in_features)))
        self.bias = Parameter(init.zeros((out_features,))) if bias else None

    def forward(self, x, relu=False):
        """``relu=True``: relu(linear(x)), fused when no gradient is recorded (Sequential asks)."""
        bias = self.param("bias") if self.bias is not None else None
        return ops.linear(x, self.param("weight"), bias, relu=relu)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}"


class _BatchNorm(Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(init.ones((num_features,)))
        self.bias = Parameter(init.zeros((num_features,)))
        self.register_buffer("running_mean", init.zeros((num_features,)))
        self.register_buffer("running_var", init.ones((num_features,)))

    def forward(self, x, relu=False, residual=None):
        """``relu`` / ``residual``: relu(bn(x) + residual) in the batch-norm kernel's own passes (a
        ResNet block asks for it when no hook needs to see the batch norm's own output)."""
        return ops.batch_norm(x, self.param("weight"), self.param("bias"), self.running_mean,
                              self.running_var, self.training, self.momentum, self.eps, relu, residual)

    def extra_repr(self):
        return str(self.num_features)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, H, W) for each channel of an NCHW input."""


class BatchNorm1d(_BatchNorm):
    """Batch norm over N for each feature of an (N, C) input."""
