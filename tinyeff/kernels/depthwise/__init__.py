"""Depthwise convolution, float32 (one filter per input channel: MobileNet, EfficientNet): spec.py,
C tier in c.py (csrc/depthwise/depthwise.c)."""
