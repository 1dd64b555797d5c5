"""Layers without parameters: activations, pooling, flatten, dropout, identity, and Sequential.

Sequential fuses a conv or linear layer with the ReLU (and max-pool) after it when no gradient is
recorded, and runs an inference pass with BLAS set to one thread once for the whole pass."""
from tinyeff import ops
from tinyeff.kernels.blas import one_thread
from tinyeff.nn.layers import Conv2d, Linear
from tinyeff.nn.module import Module
from tinyeff.tensor import is_grad_enabled


class ReLU(Module):
    def forward(self, x):
        return ops.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return ops.leaky_relu(x, self.negative_slope)


class ELU(Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return ops.elu(x, self.alpha)


class Sigmoid(Module):
    def forward(self, x):
        return ops.sigmoid(x)


class SiLU(Module):
    def forward(self, x):
        return ops.silu(x)


class ReLU6(Module):
    def forward(self, x):
        return ops.relu6(x)


class Tanh(Module):
    def forward(self, x):
        return ops.tanh(x)


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def forward(self, x):
        return ops.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class AvgPool2d(MaxPool2d):
    def forward(self, x):
        return ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Global average pooling; only output size 1 (the form CNN classifiers use) is supported."""

    def __init__(self, output_size=1):
        super().__init__()
        if output_size not in (1, (1, 1)):
            raise ValueError(f"AdaptiveAvgPool2d: only output_size=1 is supported, got {output_size}")

    def forward(self, x):
        return ops.global_avg_pool2d(x)


class Flatten(Module):
    def __init__(self, start_dim=1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        return ops.flatten(x, self.start_dim)


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p={p} must be in [0, 1)")
        self.p = p

    def forward(self, x):
        return ops.dropout(x, self.p, self.training)


class Identity(Module):
    def forward(self, x):
        return x


class Sequential(Module):
    """Runs its children in order; children are named "0", "1", ... as in PyTorch."""

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        if is_grad_enabled():
            return self._run(x)
        with one_thread():      # inference: BLAS held at one thread once, not per GEMM (kernels/blas.py)
            return self._run(x)

    def _run(self, x):
        layers = list(self._modules.values())
        i = 0
        while i < len(layers):
            if i + 1 < len(layers) and _fusable_conv_relu(layers[i], layers[i + 1], x):
                if type(layers[i]) is Conv2d:            # a Linear fuses the ReLU only
                    pool = _fusable_pool(layers[i + 2] if i + 2 < len(layers) else None)
                    x = layers[i].forward(x, relu=True, pool=pool)   # no hooks: same as calling each
                else:
                    pool = 1
                    x = layers[i].forward(x, relu=True)
                i += 2 if pool == 1 else 3
            else:
                x = layers[i](x)
                i += 1
        return x


def _fusable_pool(layer):
    """The window of a plain MaxPool2d without hooks, padding or overlap that can follow a fused
    conv + ReLU (the convolution then computes only the positions it keeps), else 1."""
    if type(layer) is not MaxPool2d or layer._forward_pre_hooks or layer._forward_hooks:
        return 1
    k = layer.kernel_size
    fits = isinstance(k, int) and k > 1 and layer.stride == k and layer.padding == 0
    return k if fits else 1


def _fusable_conv_relu(layer, after, x):
    """A plain Conv2d or Linear then a plain ReLU, without hooks (an observer must see the real
    output), and no gradient to record: the layer applies the ReLU in its output pass."""
    if type(after) is not ReLU or type(layer) not in (Conv2d, Linear):
        return False
    if layer._forward_pre_hooks or layer._forward_hooks or after._forward_pre_hooks or after._forward_hooks:
        return False
    return not is_grad_enabled() or not (getattr(x, "requires_grad", False)
                                         or any(p.requires_grad for p in layer.parameters()))
