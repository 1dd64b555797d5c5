"""``tinyeff import SRC --arch NAME --out MODEL.npz``: torchvision-layout weights or ONNX -> a tinyeff model file.

SRC is a PyTorch state_dict (.pt/.pth, read with ``torch.load(weights_only=True)``), a
``.safetensors`` file (no torch needed) or an ``.onnx`` file of a supported architecture. The
result is an ordinary float model file: ``tinyeff eval``, ``prune``, ``quantize`` and ``export``
take it as they take a trained one.
"""


def register(subparsers):
    from tinyeff.interop.torch_import import ARCHS
    p = subparsers.add_parser("import", help="import torchvision-layout weights (.pt/.safetensors) or an ONNX file")
    p.add_argument("src", metavar="SRC", help="state_dict (.pt/.pth), .safetensors or .onnx file")
    p.add_argument("--arch", required=True, help=f"architecture: {', '.join(ARCHS)}")
    p.add_argument("--out", required=True, help="the tinyeff model file (.npz) to write")
    p.set_defaults(func=run)


def run(args):
    from tinyeff import io
    if str(args.src).lower().endswith(".onnx"):
        from tinyeff.interop.onnx_import import import_onnx as read
    else:
        from tinyeff.interop.torch_import import import_state_dict as read
    try:
        model = read(args.src, args.arch)
    except ImportError as exc:
        raise ValueError(str(exc)) from exc
    size = io.save(model, args.out, source=str(args.src))
    kwargs = model.arch["kwargs"]
    print(f"wrote {args.out}: {args.arch} ({', '.join(f'{k}={v}' for k, v in kwargs.items())}), "
          f"{sum(p.size for p in model.parameters()):,} parameters, {size / 1e6:.1f} MB")
    return 0
