"""The main job: train a baseline, derive compressed variants, measure them side by side, report."""
from tinyeff.compare.pipeline import DEFAULT_VARIANTS, available_variants, run_compare

__all__ = ["DEFAULT_VARIANTS", "available_variants", "run_compare"]
