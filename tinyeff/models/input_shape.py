"""The input shape a model expects, read from its architecture record (``model.arch``).

Model files store the builder's name and arguments, so the shape need not be stored twice: channels
come from ``in_channels`` (or the builder's default), the side from ``input_size``, else
``image_size`` (the preprocessing records the size a model was trained at), else the architecture's
native resolution (``NATIVE_SIZE`` on the builder: 224 for the ImageNet-stem ResNets, torchvision's
table for EfficientNet), else 32.
"""
import inspect

DEFAULT_SIZE = 32


def _default(fn, name):
    try:
        param = inspect.signature(fn).parameters.get(name)
    except (TypeError, ValueError):
        return None
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def input_shape(model_or_arch, preprocess=None):
    """(C, H, W) for a model (or an ``arch`` dict ``{"name", "kwargs"}``); ValueError if it has no arch."""
    from tinyeff.models import BUILDERS
    arch = model_or_arch if isinstance(model_or_arch, dict) else getattr(model_or_arch, "arch", None)
    if preprocess is None and not isinstance(model_or_arch, dict):
        preprocess = getattr(model_or_arch, "preprocess", None)
    if not arch or arch.get("name") not in BUILDERS:
        raise ValueError(f"input shape unknown: the model has no architecture record ({arch!r}); "
                         "give the shape explicitly, e.g. --input 3x32x32")
    builder, kwargs = BUILDERS[arch["name"]], arch.get("kwargs", {})
    channels = kwargs.get("in_channels", _default(builder, "in_channels")) or 3
    size = kwargs.get("input_size") or (preprocess or {}).get("image_size")
    if isinstance(size, (list, tuple)):        # preprocessing records [H, W]
        size = size[0]
    if size is None:
        # a functools.partial (e.g. efficientnet_b2 = partial(efficientnet, "b2")) carries its own arguments
        func, args = getattr(builder, "func", builder), getattr(builder, "args", ())
        native = getattr(func, "native_size", None)
        size = native(*args, **kwargs) if callable(native) else _default(builder, "input_size")
    size = int(size or DEFAULT_SIZE)
    if channels is None:
        channels = 3
    return int(channels), size, size
