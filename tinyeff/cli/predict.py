"""``tinyeff predict MODEL IMAGE... [--top K] [--json]``: class and probabilities for image files.

The model's own preprocessing is applied: the channel count and image size it was trained on
(recorded in its file, else implied by its architecture), then its standardization. Float and
int8 model files both work; class names come from the file when it recorded them.
"""
import json

import numpy as np

from tinyeff.cli.common import load_model, positive_int


def register(subparsers):
    p = subparsers.add_parser("predict", help="classify image files (PNG/JPEG...) with a model file")
    p.add_argument("model", help="model file (.npz) or a run directory holding model.npz")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--top", type=positive_int, default=3, help="how many classes to list per image (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def predict_files(model, paths):
    """(probabilities (N, classes) float64, class names) for image files, with the model's preprocessing."""
    from tinyeff.data.images import read_images
    from tinyeff.models.input_shape import input_shape
    from tinyeff.train import make_preprocess, predict
    config = getattr(model, "preprocess", None) or {}
    channels, h, w = input_shape(model)
    size = config.get("image_size") or [h, w]
    images = read_images(paths, image_size=size, channels=config.get("channels", channels))
    logits = predict(model, images, preprocess=make_preprocess(config or None)).astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    classes = config.get("classes") or [str(i) for i in range(probs.shape[1])]
    if len(classes) != probs.shape[1]:
        classes = [str(i) for i in range(probs.shape[1])]
    return probs, classes


def run(args):
    if args.top < 1:
        raise ValueError(f"--top {args.top} must be at least 1")
    model = load_model(args.model)
    probs, classes = predict_files(model, args.images)
    rows = []
    for path, p in zip(args.images, probs):
        order = np.argsort(-p)[:args.top]
        rows.append({"image": path, "class": classes[order[0]],
                     "top": [{"class": classes[k], "probability": float(p[k])} for k in order]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        others = ", ".join(f"{t['class']} {100 * t['probability']:.1f}%" for t in row["top"])
        print(f"{row['image']}: {row['class']}  ({others})")
    return 0
