"""A small ONNX graph builder: named nodes and initializers, unique names, one place for the opset.

The exporters (onnx_float.py, onnx_int8.py) describe a model as a list of ONNX nodes; this class
hands out unique tensor names, turns NumPy arrays into initializers and, at the end, builds the
``ModelProto`` with a dynamic batch dimension (``N``), checks it with ``onnx.checker`` and writes it
through a temporary file and a rename. It needs the optional ``onnx`` package
(``pip install tinyeff[onnx]``), imported here and nowhere else in tinyeff.
"""
import os

import numpy as np

OPSET = 17          # per-axis DequantizeLinear needs 13; 17 is what ONNX Runtime 1.14+ runs everywhere


def require_onnx():
    """The ``onnx`` module, or a one-line ImportError saying how to install it."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("ONNX export needs the onnx package: pip install 'tinyeff[onnx]' (or pip install onnx)") \
            from exc
    return onnx


class GraphBuilder:
    """Collects nodes and initializers; ``name(hint)`` returns a fresh tensor name."""

    def __init__(self, graph_name):
        self.onnx = require_onnx()
        self.graph_name = graph_name
        self.nodes, self.initializers, self._used = [], [], set()

    def name(self, hint):
        base, i = hint.replace("/", "."), 0
        candidate = base
        while candidate in self._used:
            i += 1
            candidate = f"{base}_{i}"
        self._used.add(candidate)
        return candidate

    def const(self, hint, array):
        """Add ``array`` (its dtype kept) as an initializer; return its name."""
        name = self.name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op_type, inputs, hint, n_outputs=1, **attrs):
        """Add one node; return its output name (or a list of names when ``n_outputs`` > 1)."""
        outputs = [self.name(hint if n_outputs == 1 else f"{hint}.{k}") for k in range(n_outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), outputs, name=self.name(f"{hint}.node"),
                                                     **attrs))
        return outputs[0] if n_outputs == 1 else outputs

    def build(self, input_name, input_shape, output_name, output_rank, doc=""):
        """The checked ``ModelProto``: float32 input (N, *input_shape), float32 output of ``output_rank``."""
        helper, TensorProto = self.onnx.helper, self.onnx.TensorProto
        x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", *input_shape])
        y = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N"] + [None] * (output_rank - 1))
        graph = helper.make_graph(self.nodes, self.graph_name, [x], [y], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="tinyeff", doc_string=doc)
        model.ir_version = 8            # readable by every ONNX Runtime that runs opset 17
        self.onnx.checker.check_model(model, full_check=True)
        return model


def save_model(model, path):
    """Write ``model`` (a ModelProto) to ``path`` through a temporary file and a rename; return its size."""
    from tinyeff import fsio
    path = fsio.write_bytes(path, model.SerializeToString())
    return os.path.getsize(path)
