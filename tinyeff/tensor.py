"""Tensor: a NumPy array plus what reverse-mode autograd needs to send gradients back through it.

The one idea here: every op output remembers its parents and a ``backward`` closure that maps the
gradient of the output to one gradient per parent. ``Tensor.backward()`` sorts the graph
topologically, then walks it from the output to the leaves, accumulating (``+=``) so that a tensor
used twice receives both contributions. Leaves (parameters, inputs) keep ``.grad``; intermediate
tensors do not, and their closures are released after the pass, as in PyTorch.

What this file leaves out: the ops themselves (``tinyeff/ops/``) and the operator overloads' maths.
"""
import contextlib
import threading

import numpy as np

from tinyeff.kernels import buffers

_grad_mode = threading.local()


def is_grad_enabled():
    """True unless inside a ``no_grad()`` block (per thread)."""
    return getattr(_grad_mode, "enabled", True)


class no_grad(contextlib.ContextDecorator):
    """Context manager (or decorator): ops inside record no graph (evaluation, optimizer steps,
    teachers). A class rather than a generator: entering and leaving it is on every inference call."""

    def _recreate_cm(self):
        return type(self)()                  # as a decorator: a fresh one per call (recursion-safe)

    def __enter__(self):
        self._previous = getattr(_grad_mode, "enabled", True)
        _grad_mode.enabled = False
        return self

    def __exit__(self, *exc):
        _grad_mode.enabled = self._previous
        return False


def records_graph(parents):
    """True if an op on ``parents`` records a graph: grad mode is on and one of them requires grad."""
    if not getattr(_grad_mode, "enabled", True):
        return False
    for p in parents:
        if p.requires_grad:
            return True
    return False


def _as_array(data, dtype):
    if dtype is None and type(data) is np.ndarray:  # what every op hands make_result
        return data
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (np.ndarray, np.generic)):   # NumPy arrays and scalars keep their dtype
        data = np.asarray(data)
        return data if dtype is None else data.astype(dtype, copy=False)
    arr = np.asarray(data, dtype=dtype)
    if dtype is None and arr.dtype == np.float64:
        arr = arr.astype(np.float32)   # Python floats become float32, PyTorch's default
    return arr


class Tensor:
    """A NumPy-backed tensor with reverse-mode autograd.

    Args:
        data: array-like. An ndarray keeps its dtype; Python floats become float32.
        requires_grad: if True, ``backward()`` fills ``.grad`` for this tensor.
        dtype: optional dtype to convert ``data`` to.
    """
    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "op", "__weakref__")
    __array_priority__ = 100   # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _as_array(data, dtype)
        if requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(f"Tensor: only floating tensors can require gradients, got {self.data.dtype}")
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents = ()
        self._backward = None
        self.op = None

    # --- properties -------------------------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    def numpy(self):
        return self.data

    def item(self):
        return self.data.item()

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.data!r}{grad})"

    def detach(self):
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor(self.data)

    def astype(self, dtype):
        return ops.cast(self, dtype)

    # --- autograd ---------------------------------------------------------------------------------
    def backward(self, grad=None):
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        Args:
            grad: gradient of some scalar with respect to ``self``; may be omitted for a scalar.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no parameter or input "
                               "with requires_grad=True was used to compute it, or it was made under no_grad)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad can be omitted only for a scalar, this tensor has "
                                   f"shape {self.shape}; pass grad= of the same shape")
            grad = np.ones_like(self.data)
        grad = _as_array(grad, self.data.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"backward: grad has shape {grad.shape}, expected {self.shape}")
        grads = {id(self): grad}
        for node in reversed(_topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:          # a leaf: keep its gradient
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            for parent, pg in zip(node._parents, node._backward(g)):
                if pg is None or not parent.requires_grad:
                    continue
                key = id(parent)
                grads[key] = pg if key not in grads else _sum(grads[key], pg)
            node._parents, node._backward = (), _released   # free the graph as we go

    # --- operators (the maths lives in tinyeff/ops) -----------------------------------------------
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __pow__(self, exponent):
        return ops.pow(self, exponent)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __getitem__(self, index):
        return ops.getitem(self, index)

    def reshape(self, *shape):
        return ops.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def transpose(self, *axes):
        return ops.transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))

    @property
    def T(self):
        return ops.transpose(self, None)

    def flatten(self, start_dim=1):
        return ops.flatten(self, start_dim)

    def sum(self, axis=None, keepdims=False):
        return ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return ops.max(self, axis, keepdims)

    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def relu(self):
        return ops.relu(self)


def _sum(a, b):
    """a + b as a new array, in recycled memory when it is large (kernels/buffers.py: a fresh
    activation-sized array costs a page fault per 4 KB). A new array, never ``a`` updated in place:
    a backward may hand one array to several parents."""
    if a.shape != b.shape:
        return a + b
    return np.add(a, b, out=buffers.empty(a.shape, np.result_type(a, b)))


def _released(grad):
    """Stands in for the backward closure of a node whose graph an earlier ``backward()`` freed."""
    raise RuntimeError("backward: part of this graph was already freed by an earlier backward() (a tensor "
                       "computed once was used in two losses); add the losses and call backward() once")


def _topological_order(root):
    """Nodes reachable from ``root`` that require grad, parents before children (iterative DFS)."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._parents:
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    return order


def as_tensor(x):
    """Wrap arrays and scalars as constant Tensors; pass Tensors through."""
    return x if isinstance(x, Tensor) else Tensor(x)


def make_result(data, parents, backward, op):
    """The output of an op: records ``parents`` and ``backward`` only if a gradient can flow.

    Args:
        data: the forward result (ndarray).
        parents: the input Tensors, in the order ``backward`` returns their gradients.
        backward: ``grad_out -> tuple of grads`` (one per parent, None where not needed).
        op: a short name for debugging and profiling.
    """
    out = Tensor(data)
    if records_graph(parents):
        out.requires_grad = True
        out._parents = tuple(parents)
        out._backward = backward
        out.op = op
    return out


from tinyeff import ops  # noqa: E402  (ops import Tensor, so they load after it)
