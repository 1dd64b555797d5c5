"""Interop fixtures: ``ort`` skips a test, with the pip command, when onnx or onnxruntime is missing."""
import pytest
from interop_helpers import need


@pytest.fixture
def ort():
    need("onnx", "'tinyeff[onnx]'")
    return need("onnxruntime", "onnxruntime")
