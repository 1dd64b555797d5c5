"""``tinyeff export MODEL.npz OUT.onnx [--input CxHxW] [--verify]``: write a model as ONNX.

Float (and pruned) models export as plain ONNX operators, int8 models as a QDQ graph with tinyeff's
scales and zero points. The input shape comes from the model file unless ``--input`` overrides it.
"""
import numpy as np

from tinyeff.cli.common import load_model


def register(subparsers):
    p = subparsers.add_parser("export", help="write a model file as ONNX (float or int8), dynamic batch")
    p.add_argument("model", help="model file (.npz) or a run directory holding model.npz")
    p.add_argument("out", help="the .onnx file to write")
    p.add_argument("--input", default=None, help="input shape CxHxW (default: from the model file)")
    p.add_argument("--int8-form", choices=("qdq", "exact"), default="qdq",
                   help="int8 models: qdq (QuantizeLinear/DequantizeLinear pairs, fused to QLinearConv by runtimes; "
                        "requantizes in float) or exact (tinyeff's integer requantization in integer ops: "
                        "bit-equal outputs, slower)")
    p.add_argument("--verify", action="store_true",
                   help="run 4 random inputs through ONNX Runtime and tinyeff and print the largest difference")
    p.set_defaults(func=run)


def parse_shape(text):
    """"3x32x32" -> (3, 32, 32); ValueError naming the expected form."""
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--input {text!r}: expected CxHxW with positive sizes, such as 3x32x32")
    return shape


def run(args):
    from tinyeff.interop.export import compare_onnxruntime, export_onnx
    from tinyeff.models.input_shape import input_shape
    model = load_model(args.model)
    shape = parse_shape(args.input) if args.input else input_shape(model)
    try:
        size = export_onnx(model, args.out, shape, int8_form=args.int8_form)
    except ImportError as exc:
        raise ValueError(str(exc)) from exc
    print(f"wrote {args.out}: {size / 1e6:.2f} MB, input (N, {', '.join(map(str, shape))}), dynamic batch N")
    if args.verify:
        x = np.random.default_rng(0).standard_normal((4, *shape)).astype(np.float32)
        try:
            ours, theirs = compare_onnxruntime(model, args.out, x)
        except ImportError as exc:
            raise ValueError(str(exc)) from exc
        diff = float(np.max(np.abs(ours - theirs)))
        agree = float(np.mean(ours.argmax(1) == theirs.argmax(1))) if ours.ndim == 2 else float("nan")
        print(f"ONNX Runtime vs tinyeff on 4 random inputs: max |difference| {diff:.3g} "
              f"(largest output {float(np.max(np.abs(ours))):.3g}), top-1 agreement {100 * agree:.0f}%")
    return 0
