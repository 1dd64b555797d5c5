"""Batch norm for training (forward with batch statistics, backward): spec.py, C tier in c.py."""
