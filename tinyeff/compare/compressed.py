"""Variant builders for the compression techniques: pruning (gradual, global magnitude, then sparse
kernels), int8 static quantization, both together, and 16-bit weight storage.

Each builder starts from an independent copy of the trained baseline, so the variants never share
weights, and records in its notes what it did (final sparsity, which layers run sparse kernels,
calibration), so the report explains every row.
"""
import copy
import math

import numpy as np

from tinyeff import train
from tinyeff.compare.variants import DESCRIPTIONS, Variant, baseline_epochs, from_metrics, variant
from tinyeff.compress.prune import save as save_pruned
from tinyeff.compress.prune import sparsity_report
from tinyeff.compress.schedule import PruningCallback, polynomial_for_fit
from tinyeff.compress.sparse_infer import to_sparse
from tinyeff.quant import quantize_static
from tinyeff.quant.lowprec import round_weights, save_lowprec
from tinyeff.quant.qio import save_quantized
from tinyeff.timing import inference_fn, time_side_by_side


def _example_batch(ctx, model, n=256):
    preprocess = train.make_preprocess(model.preprocess)
    return np.asarray(preprocess(ctx.test_split.images[:n]), dtype=np.float32)


def _masked_pruned_model(ctx):
    """The baseline pruned gradually (Zhu & Gupta polynomial schedule, one global threshold) during
    ``finetune_epochs`` of fine-tuning; masks stay attached. Cached: pruned+quantized reuses it."""
    if "_masked" not in ctx.built:
        model = ctx.baseline_copy()
        steps = math.ceil(len(ctx.train_split.labels) / ctx.batch_size)
        schedule = polynomial_for_fit(ctx.sparsity, steps, ctx.finetune_epochs)
        metrics = ctx.fit(model, ctx.finetune_epochs, "pruned", callbacks=[PruningCallback(schedule, method="global")],
                          lr=ctx.lr / 2)
        ctx.built["_masked"] = (model, metrics)
    return ctx.built["_masked"]


@variant("pruned", "global magnitude pruning, gradual (polynomial schedule) with fine-tuning, "
                   "pruned layers run on sparse kernels where measured faster")
def build_pruned(ctx):
    masked, metrics = _masked_pruned_model(ctx)
    model = copy.deepcopy(masked)
    model, decisions = to_sparse(model, _example_batch(ctx, model))
    v = from_metrics("pruned", model, metrics, DESCRIPTIONS["pruned"])
    total = sparsity_report(masked)["total"]["sparsity"]
    sparse = [name for name, d in decisions.items() if d["sparse"]]
    v.notes.append(f"weight sparsity {100 * total:.1f}%; sparse kernels in {', '.join(sparse) or 'no layer'}")
    v.save = lambda path: save_pruned(masked, path)
    _fine_tuned(ctx, v)
    return v


def _fine_tuned(ctx, v):
    """Record (and say) that ``v``'s weights trained ``finetune_epochs`` more than the baseline's."""
    base = baseline_epochs(ctx)
    v.extra_epochs = ctx.finetune_epochs
    v.epochs = None if base is None else base + ctx.finetune_epochs
    v.notes.append(f"fine-tuned {ctx.finetune_epochs} epoch(s) beyond the baseline's training (see the caveat)")


@variant("quantized", "int8 static post-training quantization (per-channel weights, min-max calibration "
                      "on 512 images), integer-only inference")
def build_quantized(ctx):
    model = quantize_static(ctx.baseline_copy(), ctx.train_split, num_images=512, calibration="minmax")
    v = Variant("quantized", model, DESCRIPTIONS["quantized"], epochs=baseline_epochs(ctx))
    v.save = lambda path: save_quantized(model, path)
    return v


@variant("pruned+quantized", "the pruned model quantized to int8; its layers >= 50% sparse run on the sparse "
                             "int8 kernels or all layers on the dense ones, whichever was measured faster")
def build_pruned_quantized(ctx):
    masked, metrics = _masked_pruned_model(ctx)
    candidates = {kernel: quantize_static(copy.deepcopy(masked), ctx.train_split, num_images=512,
                                          calibration="minmax", sparse=sparse)
                  for kernel, sparse in (("sparse", None), ("dense", False))}
    x = _example_batch(ctx, masked)
    seconds = time_side_by_side({k: inference_fn(m, x) for k, m in candidates.items()}, rounds=5)
    kernel = min(seconds, key=lambda k: seconds[k][0])
    model = candidates[kernel]
    v = Variant("pruned+quantized", model, DESCRIPTIONS["pruned+quantized"])
    v.notes.append(f"{kernel} int8 kernels chosen: batch {len(x)} took {1e3 * seconds['sparse'][0]:.1f} ms on the "
                   f"sparse ones, {1e3 * seconds['dense'][0]:.1f} ms on the dense ones")
    v.notes.append("training cost is the pruned variant's fine-tuning, not counted again")
    v.save = lambda path: save_quantized(model, path)
    _fine_tuned(ctx, v)
    return v


def _lowprec(ctx, name, precision):
    model = round_weights(ctx.baseline_copy(), precision)
    v = Variant(name, model, DESCRIPTIONS[name], epochs=baseline_epochs(ctx))
    v.notes.append("weights stored in 16 bits; arithmetic runs in float32 (no 16-bit speed claimed)")
    v.save = lambda path: save_lowprec(model, path, precision)
    return v


@variant("fp16", "float16 weight storage (halves the file), computed in float32")
def build_fp16(ctx):
    return _lowprec(ctx, "fp16", "float16")


@variant("bf16", "bfloat16 weight storage (round to nearest even), computed in float32")
def build_bf16(ctx):
    return _lowprec(ctx, "bf16", "bfloat16")
