"""``export_onnx``: a tinyeff model (float, pruned or int8) -> a checked ONNX file with a dynamic batch.

Float models become plain ONNX operators (onnx_float.py, onnx_blocks.py); integer models become a
QDQ graph carrying tinyeff's own scales and zero points (onnx_int8.py). The model is run once on a
zero input of ``example_shape`` first, so a shape that does not fit fails here, with tinyeff's
message, rather than later in another runtime. ``compare_onnxruntime`` runs the file in ONNX Runtime
(optional) beside tinyeff, for tests and for ``tinyeff export --verify``.
"""
import numpy as np

from tinyeff.interop import onnx_blocks  # noqa: F401  (registers the block emitters)
from tinyeff.interop.onnx_float import emit
from tinyeff.interop.onnx_graph import GraphBuilder, save_model
from tinyeff.tensor import Tensor, no_grad

__all__ = ["export_onnx", "build_onnx", "compare_onnxruntime", "full_shape"]


def full_shape(example_shape):
    """(C, H, W) or (N, C, H, W) (or (F,) / (N, F)) -> the per-sample shape; ValueError otherwise."""
    shape = tuple(int(v) for v in example_shape)
    if len(shape) in (2, 4):
        shape = shape[1:]
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise ValueError(f"export_onnx: example_shape={tuple(example_shape)} must be (C, H, W) or (N, C, H, W) "
                         "with positive sizes, e.g. (3, 32, 32)")
    return shape


def _is_quantized(model):
    from tinyeff.quant.convert import QuantizedModel
    from tinyeff.quant.dynamic import DynamicModel
    if isinstance(model, DynamicModel):
        raise ValueError("export_onnx: a dynamically quantized model is not a statically quantized model (its "
                         "activation ranges are computed per batch); export the float model, or quantize it with "
                         "`tinyeff quantize --mode static`")
    return isinstance(model, QuantizedModel)


INT8_FORMS = ("qdq", "exact")


def build_onnx(model, example_shape, int8_form="qdq"):
    """The checked ``onnx.ModelProto`` of ``model`` for inputs (N, *example_shape).

    ``int8_form`` (integer models only): "qdq" (QuantizeLinear/DequantizeLinear around float
    operators; runtimes fuse them into QLinearConv) or "exact" (tinyeff's integer requantization
    spelled out in integer ops: every activation bit-equal to tinyeff's; onnx_int8_exact.py).
    """
    if int8_form not in INT8_FORMS:
        raise ValueError(f"export_onnx: int8_form={int8_form!r} must be one of {INT8_FORMS}")
    shape = full_shape(example_shape)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            probe = model(Tensor(np.zeros((1, *shape), np.float32)))
        name = (getattr(model, "arch", None) or {}).get("name", type(model).__name__)
        g = GraphBuilder(f"tinyeff-{name}")
        if _is_quantized(model) and int8_form == "exact":
            from tinyeff.interop.onnx_int8_exact import emit_quantized_exact
            y = emit_quantized_exact(g, model, "input", shape)
        elif _is_quantized(model):
            from tinyeff.interop.onnx_int8 import emit_quantized
            y = emit_quantized(g, model, "input")
        else:
            y = emit(g, model, "input", "")
        g.nodes.append(g.onnx.helper.make_node("Identity", [y], ["output"], name="output.node"))
        doc = f"exported by tinyeff: {name}, input (N, {', '.join(map(str, shape))})"
        return g.build("input", shape, "output", probe.ndim, doc)
    finally:
        model.train(was_training)


def export_onnx(model, path, example_shape, int8_form="qdq"):
    """Write ``model`` as an ONNX file with a dynamic batch dimension.

    Args:
        model: a float tinyeff model (any zoo architecture, pruned or not) or a ``QuantizedModel``.
        path: the .onnx file to write (temporary file, then rename).
        example_shape: one sample's input shape (C, H, W), or (N, C, H, W) whose N is ignored.
        int8_form: for integer models, "qdq" (portable) or "exact" (bit-exact); see ``build_onnx``.
    Returns:
        The file size in bytes.
    Raises:
        ImportError: the ``onnx`` package is missing (pip install 'tinyeff[onnx]').
        ValueError: a layer has no ONNX form, or the shape does not fit the model.
    """
    return save_model(build_onnx(model, example_shape, int8_form), path)


def compare_onnxruntime(model, path, x):
    """Run ``x`` (N, ...) float32 through ``model`` and through ONNX Runtime on ``path``.

    Returns:
        (tinyeff output, ONNX Runtime output), both float32 arrays.
    Raises:
        ImportError: onnxruntime is missing (pip install onnxruntime).
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ImportError("checking an export needs onnxruntime: pip install onnxruntime") from exc
    x = np.ascontiguousarray(x, np.float32)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            ours = np.asarray(model(Tensor(x)).data, np.float32)
    finally:
        model.train(was_training)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3      # errors only: graph-fusion notes are not the caller's to act on
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"input": x})[0]
    return ours, theirs
