"""Convolution and pooling geometry: output sizes and the checks every conv-like kernel runs.

One formula (PyTorch's) for the output length of a convolution along an axis, and the validation of
a (kernel, stride, padding, dilation) choice against an input shape. The kernels, the ops
(``ops/conv.py``, ``ops/pool.py``) and the FLOP counter all call these, so an illegal geometry gets
the same one-line error wherever it is first noticed.
"""


def conv_output_size(size, k, stride, padding, dilation):
    """Output length of a convolution along one axis (PyTorch's formula)."""
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def check_conv_geometry(x_shape, kh, kw, stride, padding, dilation, name):
    """Validate geometry; return (OH, OW). Raises ValueError naming the problem and the fix."""
    if len(x_shape) != 4:
        raise ValueError(f"{name}: input must be N x C x H x W, got shape {tuple(x_shape)}")
    if min(stride, dilation) < 1 or padding < 0 or min(kh, kw) < 1:
        raise ValueError(f"{name}: need stride >= 1, dilation >= 1, padding >= 0 and a kernel of at "
                         f"least 1x1; got kernel {kh}x{kw}, stride={stride}, padding={padding}, "
                         f"dilation={dilation}")
    _, _, h, w = x_shape
    oh = conv_output_size(h, kh, stride, padding, dilation)
    ow = conv_output_size(w, kw, stride, padding, dilation)
    if oh < 1 or ow < 1:
        raise ValueError(f"{name}: a {kh}x{kw} kernel (dilation {dilation}) does not fit a {h}x{w} "
                         f"input with padding {padding}; use a larger input or more padding")
    return oh, ow


def check_pool_geometry(x_shape, kernel, stride, padding, name):
    """Validate max-pooling geometry (square window, -inf padding); return (OH, OW).

    PyTorch's rule: padding <= kernel // 2 keeps every window partly inside the input, so a padded
    position never wins.
    """
    if padding > kernel // 2:
        raise ValueError(f"{name}: padding={padding} must be at most kernel // 2 = {kernel // 2}")
    return check_conv_geometry(x_shape, kernel, kernel, stride, padding, 1, name)


def check_pad2d(x, padding, name):
    """Raise ValueError unless ``x`` is (N, C, H, W) and ``padding`` >= 0."""
    if x.ndim != 4 or padding < 0:
        raise ValueError(f"{name}: need an (N, C, H, W) input and padding >= 0, got shape {x.shape} "
                         f"and padding {padding}")
