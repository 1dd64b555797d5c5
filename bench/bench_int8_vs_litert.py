"""tinyeff's integer seed CNN against LiteRT (TFLite + XNNPACK) full-integer, side by side in one process.

The same float weights on both sides: tinyeff's seed CNN (random init: speed does not depend on
training) is quantized by ``quantize_static`` (``--weight-bits 8 7`` and ``--activation-bits 8 7``:
every combination, named ``tinyeff-w{bits}a{bits}``);
a Keras copy of it (NHWC, the Linear after the flatten re-ordered from tinyeff's NCHW flatten) is
converted by the TFLite converter to a full-integer model (int8 weights per channel, int8
activations, int8 input and output: ``TFLITE_BUILTINS_INT8``), calibrated on the same images.
Both sides take float32 images in [0, 1] and return float32 logits, so both quantize the input and
dequantize the output inside the timing. ai-edge-litert runs the model (``num_threads`` = the
thread count, XNNPACK's int8 kernels via the default op resolver).

Building the .tflite needs TensorFlow (the converter); ai-edge-litert alone only runs models. The
conversion runs in a child process whose PYTHONPATH is ``--tf-path`` (e.g. a
``pip install --target DIR tensorflow-cpu``, kept out of the test environment), and the model is
cached in ``--cache``.

Both sides run the same ISA level. tinyeff follows TINYEFF_CPU_FEATURES; XNNPACK has no setting, so
when tinyeff runs its AVX2 path (``--litert-isa auto``, the default) LiteRT is capped to AVX2 too by
clearing the features above AVX2 in its cpuinfo table before its first interpreter
(``litert_isa.py`` explains how, and refuses when the table does not match the CPU).
``--litert-isa native`` runs LiteRT on everything the CPU has (on an AVX-512 VNNI machine, its VNNI
kernels). One process holds one LiteRT ISA: XNNPACK reads the table once. The first line printed
says which ISA each side ran.

    python bench/bench_int8_vs_litert.py --tf-path /tmp/tfcpu [--threads 1 2] [--repeats 21]
        [--geometries cifar fmnist] [--weight-bits 8 7] [--activation-bits 8 7] [--block 5]
        [--litert-isa auto|avx2|native] [--batch 1 8 256]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

from twins import medians, run_blocks

GEOMETRIES = {"fmnist": (1, 28), "cifar": (3, 32)}          # input (C, H = W)
BATCH = 256


def keras_weights(model, side):
    """tinyeff seed CNN -> list of Keras (kernel, bias) in layer order (Conv2D HWIO, Dense (in, out))."""
    out = []
    layers = [layer for layer in model if hasattr(layer, "weight")]
    for layer in layers:
        w, b = layer.weight.data, layer.bias.data
        if w.ndim == 4:
            out.append((w.transpose(2, 3, 1, 0), b))                               # (OC, C, KH, KW) -> HWIO
        else:
            out.append((w.T, b))
    c = layers[2].weight.data.shape[0]                                             # channels at the flatten
    hw = out[3][0].shape[0] // c
    side_out = int(round(hw ** 0.5))
    kernel = out[3][0].reshape(c, side_out, side_out, -1).transpose(1, 2, 0, 3).reshape(hw * c, -1)
    out[3] = (kernel, out[3][1])                                                   # NCHW flatten -> NHWC flatten
    return out


def convert_in_child(npz_path, tflite_path):
    """Runs under TensorFlow (child process): Keras seed CNN from the npz, full-integer TFLite out."""
    import tensorflow as tf
    data = np.load(npz_path)
    images = data["calibration"]                                                   # (N, H, W, C) float32
    batch = int(data["batch"])                                                     # the model's fixed batch
    weights = [(data[f"k{i}"], data[f"b{i}"]) for i in range(5)]
    L = tf.keras.layers
    net = tf.keras.Sequential([
        tf.keras.Input(shape=images.shape[1:], batch_size=batch),
        L.Conv2D(weights[0][0].shape[3], 3, activation="relu"), L.MaxPool2D(2),
        L.Conv2D(weights[1][0].shape[3], 3, activation="relu"), L.MaxPool2D(2),
        L.Conv2D(weights[2][0].shape[3], 3, activation="relu"), L.Flatten(),
        L.Dense(weights[3][0].shape[1], activation="relu"), L.Dense(weights[4][0].shape[1])])
    for layer, wb in zip([lay for lay in net.layers if lay.weights], weights):
        layer.set_weights(list(wb))

    def representative():
        for start in range(0, len(images), batch):
            yield [images[start:start + batch]]
    converter = tf.lite.TFLiteConverter.from_keras_model(net)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    blob = converter.convert()
    with open(tflite_path + ".tmp", "wb") as f:
        f.write(blob)
    os.replace(tflite_path + ".tmp", tflite_path)
    expected = net.predict(images[:batch], verbose=0)
    np.save(tflite_path + ".keras_logits.npy", expected)


def build_tflite(model, x_nhwc, geometry, tf_path, cache, batch=BATCH):
    """Path of the full-integer .tflite for ``model`` at a fixed ``batch`` (converted in a TensorFlow
    child process: the converter bakes the batch into the flatten's reshape, so XNNPACK cannot
    resize it later)."""
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"seed_cnn_{geometry}_b{batch}.tflite")
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "weights.npz")
        arrays = {"calibration": x_nhwc, "batch": np.int64(batch)}
        for i, (k, b) in enumerate(keras_weights(model, x_nhwc.shape[1])):
            arrays[f"k{i}"], arrays[f"b{i}"] = k.astype(np.float32), b.astype(np.float32)
        np.savez(npz, **arrays)
        env = dict(os.environ, PYTHONPATH=tf_path, TF_CPP_MIN_LOG_LEVEL="2")
        code = f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); " \
               f"import bench_int8_vs_litert as b; b.convert_in_child({npz!r}, {path!r})"
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"TFLite conversion failed (TensorFlow from --tf-path {tf_path}):\n"
                             f"{result.stderr[-2000:]}")
    return path


def litert_fn(path, threads):
    """Callable x (N, C, H, W) float32 -> float32 logits, through LiteRT (N: the model's batch)."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=path, num_threads=threads)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    (s_in, z_in), (s_out, z_out) = inp["quantization"], out["quantization"]

    def run(x):
        q = np.clip(np.rint(x.transpose(0, 2, 3, 1) / s_in) + z_in, -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], q)
        interp.invoke()
        return (interp.get_tensor(out["index"]).astype(np.float32) - z_out) * np.float32(s_out)
    return run


def litert_isa_label(choice, tinyeff_isa):
    """Caps LiteRT as asked (before any interpreter exists) and says what it runs."""
    import litert_isa
    if choice == "native" or (choice == "auto" and tinyeff_isa != "avx2"):
        return "XNNPACK's own CPU detection (not capped)"
    try:
        cleared = litert_isa.cap_avx2()
    except litert_isa.CapError as err:
        if choice == "avx2":
            raise SystemExit(f"cannot cap LiteRT at AVX2: {err}; run with --litert-isa native") from None
        return f"NOT capped ({err})"
    return ("capped at AVX2 (cleared " + ", ".join(cleared) + ")") if cleared else "AVX2 (the CPU has no more)"


def interleaved(fns, x, repeats, block):
    """Median and best seconds per call. Every repeat runs a block of ``block`` back-to-back calls of
    each fn in turn, and the process is quiesced before each block (``twins.quiesce``): XNNPACK's
    workers spin-wait after a run and would otherwise take a core from the next framework, which
    measures the neighbour, not the kernels. Back-to-back calls inside a block are what a batch-256
    inference loop runs; the first call of a block pays for the sleep before it (caches, a virtual
    CPU the host gave away), so ``block=1`` measures wake-up as much as kernels."""
    for fn in fns.values():
        fn(x)                                                                      # warm-up
    steps = {name: (lambda fn=fn: fn(x)) for name, fn in fns.items()}
    blocks, loud = run_blocks(steps, list(steps) * repeats, reps=block)
    if loud:
        print(f"NOTE: {loud} pauses ended before the process went quiet (a pool that never sleeps?)")
    per = medians(blocks)
    return {name: m for name, (m, _) in per.items()}, {name: b for name, (_, b) in per.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tf-path", required=True, help="directory with TensorFlow (pip install --target DIR "
                                                         "tensorflow-cpu), used only to convert")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "tinyeff-litert"))
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--batch", type=int, nargs="+", default=[BATCH],
                        help=f"batch sizes to time (1 to {BATCH}; calibration always uses {BATCH} images)")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--geometries", nargs="+", default=["cifar", "fmnist"], choices=list(GEOMETRIES))
    parser.add_argument("--weight-bits", type=int, nargs="+", default=[8, 7], choices=[7, 8])
    parser.add_argument("--activation-bits", type=int, nargs="+", default=[8, 7], choices=[7, 8])
    parser.add_argument("--block", type=int, default=5, help="back-to-back calls per side in each repeat "
                                                             "(the process is quiesced between blocks)")
    parser.add_argument("--litert-isa", choices=["auto", "avx2", "native"], default="auto",
                        help="cap LiteRT's XNNPACK at AVX2, or not (auto: cap when tinyeff's int8 path is AVX2)")
    args = parser.parse_args(argv)
    if not all(1 <= b <= BATCH for b in args.batch):
        parser.error(f"--batch takes sizes from 1 to {BATCH}")
    from tinyeff import Tensor, models, no_grad
    from tinyeff.kernels import c as c_kernels
    from tinyeff.kernels.int8_gemm import c as c_int8
    from tinyeff.quant import quantize_static
    print(f"tinyeff {c_int8.code_path()}; TINYEFF_CPU_FEATURES={os.environ.get('TINYEFF_CPU_FEATURES', '(unset)')}; "
          f"LiteRT: {litert_isa_label(args.litert_isa, c_int8.best_isa())}")
    for geometry in args.geometries:
        c, side = GEOMETRIES[geometry]
        rng = np.random.default_rng(1234)
        images = rng.integers(0, 256, (BATCH, c, side, side), dtype=np.uint8)
        x = images.astype(np.float32) / np.float32(255)
        model = models.create("seed-cnn", in_channels=c, num_classes=10, input_size=side).eval()
        x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        paths = {b: build_tflite(model, x_nhwc, geometry, args.tf_path, args.cache, b) for b in args.batch}
        with no_grad():
            ref = model(Tensor(x)).data
        for b, path in paths.items():
            keras = np.load(path + ".keras_logits.npy")
            assert np.abs(keras - ref[:b]).max() <= 1e-3 * max(1.0, np.abs(ref).max()), "Keras copy differs"
        qmodels = {f"tinyeff-w{wb}a{ab}": quantize_static(model, images, num_images=BATCH, weight_bits=wb,
                                                          activation_bits=ab)
                   for wb in args.weight_bits for ab in args.activation_bits}
        for threads in args.threads:
            c_kernels.set_num_threads(threads)
            for batch in args.batch:
                compare(qmodels, paths[batch], threads, x[:batch], ref[:batch], args,
                        f"{geometry} seed CNN {c}x{side}x{side}")


def compare(qmodels, path, threads, x, ref, args, title):
    """Checks every side's logits against float32, then times them interleaved and prints the table."""
    from tinyeff import Tensor, no_grad
    batch = x.shape[0]
    fns = {name: (lambda x, q=q: q(Tensor(x)).data) for name, q in qmodels.items()}
    fns["litert"] = litert_fn(path, threads)
    tol = 0.1 * np.abs(ref).max()
    with no_grad():
        for name, fn in fns.items():
            err = np.abs(fn(x) - ref).max()
            assert err <= tol, f"{name}: logits differ from float32 by {err:.3g} (> {tol:.3g})"
        median, best = interleaved(fns, x, args.repeats, args.block)
    print(f"\n{title}, batch {batch}, {threads} thread(s), "
          f"{args.repeats} interleaved repeats of {args.block} calls per side: median, then best call")
    for name, t in median.items():
        b = best[name]
        print(f"  {name:<12}{1e3 * t:>9.3f} ms{batch / t:>9.0f} img/s{median['litert'] / t:>7.2f}x LiteRT"
              f"   | best {1e3 * b:>8.3f} ms{batch / b:>9.0f} img/s{best['litert'] / b:>7.2f}x LiteRT")


if __name__ == "__main__":
    main()
