"""Integer convolution on NHWC: the (kh, kw, c) im2col and the whole conv + requant + pool (spec.py)."""
