"""ReLU forward and backward, float32: spec.py, C tier in c.py (csrc/relu/relu.c)."""
