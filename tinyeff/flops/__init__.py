"""tinyeff.flops: MACs, FLOPs, parameters and memory per layer, counted from the shapes actually run."""
from tinyeff.flops.count import FlopReport, LayerCount, count

__all__ = ["FlopReport", "LayerCount", "count"]
