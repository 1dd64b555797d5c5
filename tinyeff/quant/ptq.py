"""Post-training static quantization: fold BN, calibrate activation ranges on a few hundred images, convert.

    qmodel = quantize_static(model, train_split, num_images=512, calibration="mse", per_channel=True)

Static means every activation's (scale, zero_point) is fixed after calibration, so inference needs
no range computation at all: the integer model is pure int8/int32 arithmetic between the input
quantization and the output dequantization (convert.py). Left out: bias correction and AdaRound.
"""
import numpy as np

from tinyeff.quant.convert import convert
from tinyeff.quant.prepare import prepare
from tinyeff.quant.sparse_choice import choose_sparse_kernels
from tinyeff.tensor import Tensor, no_grad

__all__ = ["calibrate", "quantize_static", "calibration_images"]


def calibration_images(data, num_images, seed=0):
    """uint8 images to calibrate on: a random subset of a Split's images (or an array) of size ``num_images``."""
    images = getattr(data, "images", data)
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0 or num_images < 1:
        raise ValueError(f"calibrate: need at least one N x C x H x W calibration image, got "
                         f"{images.shape[0] if images.ndim else 0} images (num_images={num_images}); "
                         "pass the training split and num_images >= 1")
    if len(images) <= num_images:
        return images
    idx = np.random.default_rng(seed).choice(len(images), num_images, replace=False)
    return images[np.sort(idx)]


def calibrate(prepared, images, batch_size=128, preprocess=None):
    """Run uint8 ``images`` (N, C, H, W) through ``prepared`` so every observer records its range.

    Raises:
        ValueError: ``images`` is empty (no range can be observed).
    """
    from tinyeff.data.transforms import make_preprocess
    if len(images) == 0:
        raise ValueError("calibrate: zero calibration images; pass a few hundred training images")
    preprocess = preprocess or make_preprocess(getattr(prepared, "preprocess", None))
    prepared.eval()
    with no_grad():
        for start in range(0, len(images), batch_size):
            x = np.asarray(preprocess(images[start:start + batch_size]), dtype=np.float32)
            prepared(Tensor(x))
    return prepared


def quantize_static(model, data, num_images=512, calibration="minmax", per_channel=True, sparse=None,
                    weight_calibration="minmax", seed=0, weight_bits=8, activation_bits=7, **observer_kwargs):
    """Quantize a trained float ``model`` to an integer-only ``QuantizedModel``.

    Args:
        model: trained float model (eval-mode BN statistics are folded).
        data: a ``Split`` or uint8 image array to draw calibration images from.
        num_images: how many calibration images (a few hundred is enough for min-max/MSE ranges).
        calibration: activation observer: "minmax", "moving-average", "percentile" or "mse".
        per_channel: per-output-channel weight scales (else per tensor).
        sparse: see ``convert``; None picks the sparse int8 kernels for layers >= 50% sparse, then, in a
            model that has such layers, gives each of those and each dense stride-1 conv whichever
            kernels were measured faster here (``sparse_choice``); in any model, a flatten + linear
            pair runs as a conv over the NHWC map where that was measured faster.
        weight_bits: 8, or 7 (codes in [-63, 63]: AVX2's fast int8 kernel on every layer).
        activation_bits: 7 (codes in [0, 127], PyTorch's reduce_range: AVX2's fast kernel for any
            weights, two k groups per vpmaddwd where the weights allow; the default, at a measured
            0.00-0.17 points on Fashion-MNIST, docs/int8.md section 10), or 8 (see ``convert``).
    Returns:
        QuantizedModel (see convert.py).
    Raises:
        ValueError: no calibration images, unknown calibration, or a layer without an integer version.
    """
    images = calibration_images(data, num_images, seed)
    prepared = prepare(model, calibration, **observer_kwargs)
    calibrate(prepared, images)
    info = {"mode": "static", "calibration": calibration, "calibration_images": int(len(images))}
    qmodel = convert(prepared, per_channel, weight_calibration, sparse, info, weight_bits, activation_bits)
    if sparse is None:                  # kernels chosen by measurement, not forced
        from tinyeff.data.transforms import make_preprocess
        preprocess = make_preprocess(getattr(prepared, "preprocess", None))
        has_sparse = any(getattr(m, "sparse", False) for m in qmodel.body.modules())
        choose_sparse_kernels(qmodel, np.asarray(preprocess(images[:256]), dtype=np.float32),
                              sparse_twins=has_sparse)
    return qmodel
