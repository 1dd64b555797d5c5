"""Model compression: pruning (masks, schedules, thinning, sensitivity, sparse inference) and
quantization. Each concept lives in its own module; this file only re-exports public names.
"""
# --- pruning (issue 5) ---------------------------------------------------------------------------------
from tinyeff.compress.masks import (channel_mask, global_magnitude_masks, magnitude_mask, nm_mask,
                                    random_mask)
from tinyeff.compress.prune import (compute_masks, format_report, get_mask, is_pruned, prunable_layers,
                                    prune, prune_to_sparsity, remove_pruning, restore_pruning,
                                    sparsity_report)
from tinyeff.compress.prune import save as save_pruned

# --- quantization (issue 6; implemented in tinyeff.quant) ----------------------------------------------
from tinyeff.quant import (QuantizedModel, compute_qparams, convert, dequantize, fake_quant,  # noqa: E402
                           fold_batchnorm, make_observer, prepare, quantize, quantize_static)
from tinyeff.quant.dynamic import quantize_dynamic  # noqa: E402
from tinyeff.quant.lowprec import round_weights, save_lowprec  # noqa: E402
from tinyeff.quant.qat import FreezeObservers, prepare_qat  # noqa: E402
from tinyeff.quant.qio import save_quantized  # noqa: E402
