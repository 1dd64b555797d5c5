"""``tinyeff quantize MODEL --data NAME --mode static|dynamic|qat ...``: int8 model, metrics.json, one table.

Writes to ``--out``: ``model.npz`` (the quantized model, kind "quantized"), ``float16.npz`` and
``bfloat16.npz`` (16-bit weight storage, the cheaper alternatives) and ``metrics.json`` with
accuracy (float vs each variant), file and in-memory sizes, and batch inference time of the float
and integer models measured side by side in this run.
"""
import os

import numpy as np

from tinyeff.cli.common import (add_progress_arg, nonnegative_int, output_dir, positive_float, positive_int,
                                show_progress)


def register(subparsers):
    p = subparsers.add_parser("quantize", help="quantize a trained model to int8 (static, dynamic or QAT)")
    p.add_argument("model", help="a float model file (model.npz from `tinyeff train`)")
    p.add_argument("--data", default="fashion-mnist-sample", help="dataset for calibration/QAT and evaluation")
    p.add_argument("--root", default=None, help="directory with the dataset files (only there; default: the usual places)")
    p.add_argument("--mode", default="static", choices=["static", "dynamic", "qat"])
    p.add_argument("--calibration", default="minmax", choices=["minmax", "percentile", "mse", "moving-average"])
    p.add_argument("--per-channel", action="store_true", help="per-output-channel weight scales")
    p.add_argument("--calibration-images", type=positive_int, default=512)
    p.add_argument("--weight-bits", type=int, default=8, choices=[7, 8],
                   help="7: weight codes in [-63, 63], so AVX2's fast int8 kernel runs every layer (static mode)")
    p.add_argument("--activation-bits", type=int, default=None, choices=[7, 8],
                   help="activation codes in [0, 2**bits - 1]; static mode's default 7 (PyTorch's reduce_range) "
                        "lets AVX2's fast int8 kernel run 8-bit weights exactly (docs/int8.md, section 9); "
                        "dynamic and QAT use 8")
    p.add_argument("--qat-epochs", type=positive_int, default=2)
    p.add_argument("--qat-lr", type=positive_float, default=1e-4)
    p.add_argument("--freeze-after", type=nonnegative_int, default=1,
                   help="QAT: freeze observers after this many epochs")
    p.add_argument("--batch-size", type=positive_int, default=256, help="inference batch for the speed measurement")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed batches per model (median reported)")
    p.add_argument("--out", required=True, help="output directory")
    add_progress_arg(p)
    p.set_defaults(func=run)


def quantize_model(model, train, args):
    """The quantized model for ``args.mode``."""
    from tinyeff import quant
    if args.activation_bits is None:
        args.activation_bits = 7 if args.mode == "static" else 8
    for flag, bits in (("--weight-bits", args.weight_bits), ("--activation-bits", args.activation_bits)):
        if bits != 8 and args.mode != "static":
            raise ValueError(f"quantize: {flag} {bits} needs --mode static ({args.mode} quantizes to 8 bits); "
                             f"drop {flag} or use --mode static")
    if args.mode == "static":
        return quant.quantize_static(model, train, args.calibration_images, args.calibration, args.per_channel,
                                     weight_bits=args.weight_bits, activation_bits=args.activation_bits)
    if args.mode == "dynamic":
        return quant.quantize_dynamic(model, args.per_channel)
    from tinyeff.train import fit
    prepared = quant.prepare_qat(model, args.per_channel)
    fit(prepared, train, epochs=args.qat_epochs, lr=args.qat_lr, batch_size=64, progress=show_progress(args),
        callbacks=[quant.FreezeObservers(args.freeze_after)])
    return quant.convert(prepared, args.per_channel, info={"mode": "qat", "qat_epochs": args.qat_epochs})


def run(args):
    from tinyeff import data, io
    model = io.load(args.model, expect_kind=io.FLOAT_KINDS)
    train, test = data.load(args.data, root=args.root)
    with output_dir(args.out):
        return _run(args, model, train, test)


def _run(args, model, train, test):
    from tinyeff import fsio, quant
    from tinyeff.timing import inference_fn, time_side_by_side
    from tinyeff.train import evaluate, make_preprocess
    qmodel = quantize_model(model, train, args)
    if args.mode != "dynamic":
        from tinyeff.quant.islands import summary_lines
        print("\n".join(summary_lines(qmodel)))
    qmodel.preprocess = model.preprocess = getattr(model, "preprocess", None) or getattr(qmodel, "preprocess", None)
    rows = {"float32": (model, os.path.getsize(args.model), sum(p.data.nbytes for p in model.parameters()))}
    qpath = os.path.join(args.out, "model.npz")
    rows["int8"] = (qmodel, quant.save_quantized(qmodel, qpath, source_model=os.path.abspath(args.model)),
                    qmodel.nbytes())
    for precision in ("float16", "bfloat16"):
        path = os.path.join(args.out, f"{precision}.npz")
        rounded = quant.round_weights(model, precision)
        rows[precision] = (rounded, quant.save_lowprec(model, path, precision), rows["float32"][2] // 2)
    x = np.asarray(make_preprocess(model.preprocess)(test.images[:args.batch_size]), np.float32)
    metrics = {"mode": args.mode, "calibration": args.calibration, "per_channel": args.per_channel,
               "weight_bits": args.weight_bits, "activation_bits": args.activation_bits,
               "data": args.data, "batch_size": int(len(x)), "variants": {}}
    for name, (m, file_bytes, memory_bytes) in rows.items():
        result = evaluate(m, test)
        metrics["variants"][name] = {"accuracy": result["accuracy"], "file_bytes": int(file_bytes),
                                     "memory_bytes": int(memory_bytes)}
    seconds = time_side_by_side({name: inference_fn(rows[name][0], x) for name in ("float32", "int8")},
                                rounds=args.repeats, min_time_s=0.0)     # interleaved, same batch, same run
    for name, (median_s, _) in seconds.items():
        metrics["variants"][name]["batch_time_s"] = median_s
    v = metrics["variants"]
    metrics["int8_vs_float32"] = {"accuracy_drop_points": 100 * (v["float32"]["accuracy"] - v["int8"]["accuracy"]),
                                  "speedup": v["float32"]["batch_time_s"] / v["int8"]["batch_time_s"],
                                  "file_size_ratio": v["float32"]["file_bytes"] / v["int8"]["file_bytes"]}
    fsio.write_json(os.path.join(args.out, "metrics.json"), metrics)
    print(f"{'variant':<10}{'accuracy':>10}{'file bytes':>12}{'memory bytes':>14}{'batch s':>10}")
    for name, row in v.items():
        t = f"{row['batch_time_s']:.4f}" if "batch_time_s" in row else "-"
        print(f"{name:<10}{row['accuracy']:>10.4f}{row['file_bytes']:>12}{row['memory_bytes']:>14}{t:>10}")
    s = metrics["int8_vs_float32"]
    print(f"int8: {s['accuracy_drop_points']:+.2f} points drop, {s['speedup']:.2f}x faster, "
          f"{s['file_size_ratio']:.2f}x smaller file; wrote {args.out}/metrics.json")
    from tinyeff import kernels
    if args.mode == "static" and args.activation_bits == 8 and args.weight_bits == 8 and \
            kernels.available("gemm_u8s8_packed", "c") and kernels.registry.best_isa("gemm_u8s8_packed") == "avx2":
        print("note: this CPU runs int8 on AVX2 (no VNNI); --activation-bits 7 (or --weight-bits 7) lets every "
              "layer use its ~2x faster vpmaddubsw kernel (docs/int8.md, section 9)")
    return 0
