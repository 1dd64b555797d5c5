"""Import torchvision-layout weights: a PyTorch state_dict (.pt/.pth) or a safetensors file.

The zoo's ResNet-18/34/50, MobileNetV2 and EfficientNet-B0..B3 are built to torchvision's
architectures, so importing is a renaming, not a conversion: MobileNetV2 and EfficientNet use
torchvision's module names unchanged, and the ResNets differ only in ``layer<i>`` ->
``layers.<i-1>`` and ``downsample`` -> ``shortcut``. What the file says fixes the rest: the number of
classes comes from the classifier's weight, the input channels and the stem (7x7 weight ->
``stem="imagenet"``, 3x3 -> "cifar") from the first conv. BatchNorm's ``num_batches_tracked``
counter is dropped. Anything else that does not fit -- a missing, extra or mis-shaped tensor -- is
refused with the names, before a model file is written.

Reading never unpickles arbitrary objects: ``torch.load(weights_only=True)`` (torch's restricted
unpickler: tensors and plain containers only) when torch is installed, and ``safetensors`` (a flat
header plus raw arrays) otherwise.
"""
import os
import re

import numpy as np

from tinyeff.errors import ModelFileError

ARCHS = ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "efficientnet_b0", "efficientnet_b1",
         "efficientnet_b2", "efficientnet_b3")
IMAGENET_PREPROCESS = {"kind": "standardize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
_RESNET_RENAMES = ((re.compile(r"^layer(\d)\."), lambda m: f"layers.{int(m.group(1)) - 1}."),
                   (re.compile(r"\.downsample\."), lambda m: ".shortcut."))


def check_arch(arch):
    if arch not in ARCHS:
        raise ValueError(f"import: --arch {arch!r} is not importable; choose one of {', '.join(ARCHS)}")


def read_state_dict(path):
    """name -> float32 ndarray from a .safetensors file or a torch state_dict file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such file")
    if path.endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError as exc:
            raise ImportError("reading .safetensors needs the safetensors package: pip install safetensors") from exc
        try:
            return {k: np.asarray(v) for k, v in load_file(path).items()}
        except Exception as exc:        # safetensors raises its own SafetensorError on a damaged file
            raise ModelFileError(f"{path}: not a readable safetensors file ({exc})") from exc
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"{path}: reading a PyTorch checkpoint needs torch (pip install torch); or save it as "
                          ".safetensors with safetensors.torch.save_file, which tinyeff reads without torch") from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:            # torch raises UnpicklingError / RuntimeError for refused or broken files
        raise ModelFileError(f"{path}: not a loadable weights-only PyTorch state_dict ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]     # a training checkpoint that wraps the weights
    if not isinstance(state, dict) or not all(hasattr(v, "detach") for v in state.values()):
        raise ModelFileError(f"{path}: holds a {type(state).__name__}, not a state_dict of tensors; "
                             "save model.state_dict() instead of the model")
    return {k: v.detach().cpu().float().numpy() if v.is_floating_point() else v.cpu().numpy()
            for k, v in state.items()}


def to_tinyeff_names(arch, state):
    """torchvision key names -> tinyeff's, ``num_batches_tracked`` dropped."""
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if arch.startswith("resnet"):
            for pattern, repl in _RESNET_RENAMES:
                key = pattern.sub(repl, key)
        out[key] = value
    return out


def _first_conv(arch):
    return "conv1.weight" if arch.startswith("resnet") else "features.0.0.weight"


def _classifier(arch):
    return "fc.weight" if arch.startswith("resnet") else "classifier.1.weight"


def infer_kwargs(arch, state, where):
    """Builder arguments the tensors imply: in_channels, num_classes and (ResNets) the stem."""
    for key in (_first_conv(arch), _classifier(arch)):
        if key not in state:
            raise ModelFileError(f"{where}: no {key!r} tensor, so it is not a torchvision {arch} state_dict "
                                 f"(first keys: {', '.join(list(state)[:4])})")
    stem_w, fc_w = state[_first_conv(arch)], state[_classifier(arch)]
    kwargs = {"in_channels": int(stem_w.shape[1]), "num_classes": int(fc_w.shape[0])}
    if arch.startswith("resnet"):
        kwargs["stem"] = "imagenet" if stem_w.shape[-1] == 7 else "cifar"
        kwargs["width"] = int(stem_w.shape[0])
    return kwargs


def _names(keys, limit=6):
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_into(model, state, where):
    """Copy ``state`` into ``model``; ModelFileError naming missing, extra and mis-shaped tensors."""
    expected = model.state_dict()
    missing, extra = set(expected) - set(state), set(state) - set(expected)
    shapes = [f"{k} {tuple(np.shape(state[k]))} (expected {tuple(v.shape)})" for k, v in expected.items()
              if k in state and np.shape(state[k]) != v.shape]
    problems = ([f"missing {_names(missing)}"] if missing else []) + ([f"extra {_names(extra)}"] if extra else []) + \
        ([f"mis-shaped {'; '.join(shapes[:4])}"] if shapes else [])
    if problems:
        raise ModelFileError(f"{where}: does not fit tinyeff's {model.arch['name']}: {'; '.join(problems)}")
    model.load_state_dict({k: np.asarray(v, np.float32) for k, v in state.items()})
    return model


def import_state_dict(path, arch):
    """Build tinyeff's ``arch`` from torchvision-layout weights at ``path``.

    Returns:
        The float model (eval mode), ``arch`` recorded and ImageNet standardization as its
        preprocessing (torchvision's weights expect it).
    Raises:
        ValueError: unknown ``arch``. ModelFileError: unreadable file, or tensors that do not fit.
        ImportError: a .pt/.pth file and no torch (the message names the safetensors route).
    """
    from tinyeff import models
    check_arch(arch)
    state = to_tinyeff_names(arch, read_state_dict(path))
    model = models.create(arch, **infer_kwargs(arch, state, path))
    load_into(model, state, path)
    model.preprocess = dict(IMAGENET_PREPROCESS) if model.arch["kwargs"]["in_channels"] == 3 else None
    return model.eval()
