"""Integer epilogues: requantize int32 sums to 8 bits, and the uint8 residual add (spec.py)."""
