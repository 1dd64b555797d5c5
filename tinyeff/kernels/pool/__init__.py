"""Max-pooling, float32 (forward with argmax, backward scatter) and uint8 (NCHW and NHWC): spec.py."""
