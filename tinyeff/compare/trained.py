"""Variant builders that train a model rather than transform the baseline: knowledge distillation into
a half-width student, and mixed-precision training of the same network."""
from tinyeff.compare.variants import DESCRIPTIONS, from_metrics, variant
from tinyeff.compress.distill import distill
from tinyeff.models import knobs
from tinyeff.precision import get_policy


@variant("distilled", "half-width seed CNN or CIFAR ResNet (same width otherwise) distilled from the baseline "
                      "(Hinton loss, T=4, alpha=0.9), as many epochs as the baseline")
def build_distilled(ctx):
    half = ctx.model_name == "seed-cnn" or knobs.resnet_family(ctx.model_name)
    student = ctx.build(width_scale=0.5 if half else 1.0)
    teacher = ctx.built["baseline"].model
    metrics = distill(teacher, student, ctx.train_split, ctx.test_split, temperature=4.0, alpha=0.9,
                      epochs=ctx.epochs, batch_size=ctx.batch_size, lr=ctx.lr, seed=ctx.seed, schedule="cosine",
                      progress=ctx.progress)
    v = from_metrics("distilled", student, metrics, DESCRIPTIONS["distilled"])
    v.epochs, v.loss_name = ctx.epochs, "distillation loss"
    v.notes.append(f"student {'at half' if half else 'at the same'} width; teacher test accuracy "
                   f"{100 * metrics['distillation']['teacher_test_accuracy']:.2f}%")
    return v


@variant("mixed_fp16", "trained from scratch with float16 activations and weights, float32 master weights "
                       "and dynamic loss scaling; evaluated in float32")
def build_mixed_fp16(ctx):
    model = ctx.build()
    policy = get_policy("mixed_float16")
    metrics = ctx.fit(model, ctx.epochs, "mixed_fp16", precision=policy)
    policy.release(model)                  # evaluate and save the float32 master weights
    v = from_metrics("mixed_fp16", model, metrics, DESCRIPTIONS["mixed_fp16"])
    v.epochs = ctx.epochs
    report = metrics["precision"]
    v.notes.append(f"skipped steps {report.get('skipped_steps')}, final loss scale {report.get('loss_scale')}; "
                   "16-bit arithmetic runs on NumPy's reference kernels here, so it saves memory, not time")
    return v
