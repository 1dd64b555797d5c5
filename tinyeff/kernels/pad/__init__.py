"""Zero padding of (N, C, H, W) planes: the direct convolution pads every input this way (spec.py)."""
