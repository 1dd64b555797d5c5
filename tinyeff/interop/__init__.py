"""Interoperability: ONNX export (and import), PyTorch state_dict import.

Everything here leans on optional packages (``onnx``, ``onnxruntime``, ``torch``, ``safetensors``),
imported only when a function that needs them runs, with an ImportError that says what to install.
"""


def export_onnx(model, path, example_shape):
    """See ``tinyeff.interop.export.export_onnx``."""
    from tinyeff.interop.export import export_onnx as _export
    return _export(model, path, example_shape)


__all__ = ["export_onnx"]
