"""``tinyeff flops MODEL [--input CxHxW] [--batch N] [--train] [--json]``: per-layer MACs/FLOPs table.

A model file's input shape comes from the file (its architecture and preprocessing record);
``--input`` overrides it, and a zoo name without ``--input`` is counted at 3x32x32.
"""
import json
import os

from tinyeff.cli.common import positive_int


def register(subparsers):
    p = subparsers.add_parser("flops", help="count MACs, FLOPs, parameters and memory per layer")
    add_model_args(p)
    p.add_argument("--train", action="store_true", help="also show the training-step memory estimate")
    p.add_argument("--optimizer", default="sgd-momentum", choices=["sgd", "sgd-momentum", "adam"])
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def add_model_args(p):
    p.add_argument("model", metavar="MODEL", help="a model file (.npz) or a model name (see `tinyeff info`)")
    p.add_argument("--input", default=None,
                   help="input shape CxHxW (default: from the model file; 3x32x32 for a model name)")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size N (default 1)")


def load_model(args):
    """Build the model named by ``args.model`` (a file path or a zoo name) and the input shape."""
    from tinyeff import io, models
    from tinyeff.models.input_shape import input_shape
    text = args.input or "3x32x32"
    try:
        chw = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        chw = ()
    if len(chw) != 3 or min(chw) < 1:
        raise ValueError(f"--input {text!r}: expected CxHxW with every size >= 1, such as 3x32x32")
    if os.path.exists(args.model):
        model = io.load(args.model)
        if args.input is None:
            chw = input_shape(model)
    elif args.model in models.names():
        model = models.create(args.model, **models.input_kwargs(args.model, chw[0], chw[1], 10))
    else:
        raise ValueError(f"{args.model}: no such model file, and not a model name "
                         f"(choose one of: {', '.join(models.names())})")
    return model, (args.batch,) + chw


def _fmt(n):
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def run(args):
    from tinyeff.flops import count
    model, shape = load_model(args)
    report = count(model, shape, optimizer=args.optimizer)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    print(f"{args.model}, input {shape}; 1 MAC = 2 FLOPs; effective = what the kernels that ran did; "
          f"nonzero = MACs on nonzero weights (what a zero-skipping kernel would do)")
    print(f"{'layer':<28}{'type':<18}{'output':<18}{'MACs':>9}{'eff MACs':>10}{'nz MACs':>10}{'FLOPs':>9}"
          f"{'params':>9}{'nonzero':>9}{'act B':>9}")
    for l in report.layers:
        print(f"{l.name:<28}{l.type:<18}{'x'.join(map(str, l.output_shape)):<18}{_fmt(l.macs):>9}"
              f"{_fmt(l.macs_effective):>10}{_fmt(l.macs_nonzero):>10}{_fmt(l.flops):>9}{_fmt(l.params):>9}"
              f"{_fmt(l.params_nonzero):>9}{_fmt(l.activation_bytes):>9}")
    t = report.totals
    print(f"{'total':<64}{_fmt(t['macs']):>9}{_fmt(t['macs_effective']):>10}{_fmt(t['macs_nonzero']):>10}"
          f"{_fmt(t['flops']):>9}{_fmt(t['params']):>9}{_fmt(t['params_nonzero']):>9}"
          f"{_fmt(t['activation_bytes']):>9}")
    print(f"effective MACs by dtype: {t['macs_effective_by_dtype']}; parameter bytes (stored): "
          f"{_fmt(t['param_bytes'])}B")
    if args.train:
        print(f"training-step peak memory (estimate: activations + params + grads + {args.optimizer} "
              f"state): {_fmt(t['train_peak_bytes'])}B")
    return 0
