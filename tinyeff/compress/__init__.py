"""Model compression by pruning: masks, attaching them, schedules, thinning, sensitivity, sparse
inference. Each concept lives in its own module; this file only re-exports public names.
Quantization is ``tinyeff.quant``.
"""
from tinyeff.compress.masks import (channel_mask, global_magnitude_masks, magnitude_mask, nm_mask,
                                    random_mask)
from tinyeff.compress.prune import (compute_masks, format_report, get_mask, is_pruned, prunable_layers,
                                    prune, prune_to_sparsity, remove_pruning, sparsity_report)
from tinyeff.compress.prune import save as save_pruned

__all__ = ["channel_mask", "compute_masks", "format_report", "get_mask", "global_magnitude_masks", "is_pruned",
           "magnitude_mask", "nm_mask", "prunable_layers", "prune", "prune_to_sparsity", "random_mask",
           "remove_pruning", "save_pruned", "sparsity_report"]
