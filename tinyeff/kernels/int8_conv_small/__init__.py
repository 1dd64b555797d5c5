"""Integer convolution for few input channels (a first layer), output channels in the lanes (spec.py)."""
