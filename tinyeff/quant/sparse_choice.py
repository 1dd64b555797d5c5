"""Sparse or dense int8 kernels, layer by layer: measured on this machine, on the activations each layer sees.

``convert`` marks a layer sparse when its int8 weight is at least ``qmodules.SPARSE_MIN`` zeros. Whether
the sparse kernel then wins depends on the layer's shape and the CPU (a pruned 3x3 conv on NHWC beats
the dense GEMM long before 90%; a small pruned linear layer may lose to it; on AVX2 a narrow conv with
one input channel runs faster on the sparse NHWC kernel even at 0% sparsity), so
``choose_sparse_kernels`` times each sparse layer, and each dense stride-1 conv the sparse NHWC kernel
could run, against its twin on a real batch, in the layout and fusion the integer model runs it
(NHWC, conv + max-pool fused), and keeps the faster. Both kernels compute the same integers, so the
choice changes speed only. Left out: residual blocks (their layers keep the rule).
"""
import time

from tinyeff.quant.qmodules import QConv2d, QLinear, QSequential, QWeighted
from tinyeff.quant.qmodules.base import to_nchw, to_nhwc
from tinyeff.quant.qmodules.nhwc import runs_nhwc


def kernel_twin(layer):
    """The same integer layer with the other kind of kernel (sparse <-> dense)."""
    args = (layer.weight_q, layer.weight_scale, layer.bias_q, layer.in_qparams, layer.out_qparams)
    if isinstance(layer, QConv2d):
        return QConv2d(*args, layer.stride, layer.padding, relu=layer.relu, sparse=not layer.sparse,
                       act_qmax=layer.act_qmax)
    return QLinear(*args, relu=layer.relu, sparse=not layer.sparse, act_qmax=layer.act_qmax)


def _candidate(layer):
    """A sparse layer, or a dense conv that ``spconv_u8s8_requant_nhwc`` could run (stride 1, requantized)."""
    if not isinstance(layer, QWeighted):
        return False
    return layer.sparse or (isinstance(layer, QConv2d) and layer.stride == 1 and layer.out_qparams is not None)


def _runner(layer, nxt, q, nhwc):
    """How ``QSequential._run`` runs ``layer`` on ``q``: (q in that layout, fn(module) -> output, pool fused?, nhwc)."""
    if q.ndim == 4 and runs_nhwc(layer):
        q = q if nhwc else to_nhwc(q)
        fuse = isinstance(layer, QConv2d) and nxt is not None and layer.can_fuse_pool(nxt) and runs_nhwc(nxt)
        return q, (lambda m: m.forward_nhwc(q, pool=2) if fuse else m.forward_nhwc(q)), fuse, True
    q = to_nchw(q) if q.ndim == 4 and nhwc else q
    return q, (lambda m: m(q)), False, False


def _best_of_pair(fa, fb, repeats):
    """Fastest of ``repeats`` calls each, the two alternating after a warm-up (as ``kernels.stopwatch``
    times one function), so load that comes and goes on a shared machine hits both alike."""
    fa(), fb()
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for k, fn in enumerate((fa, fb)):
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def choose_sparse_kernels(qmodel, x, repeats=7):
    """Give each candidate layer of ``qmodel.body`` (see ``_candidate``) the faster of its sparse and dense kernels.

    Args:
        qmodel: a ``QuantizedModel`` whose body is a ``QSequential`` (other bodies are left as they are).
        x: a float input batch, preprocessed as the model expects (N, C, H, W).
        repeats: timed calls per kernel, alternating (the fastest of each counts).
    Returns:
        dict layer index -> {"sparse": bool chosen, "sparse_s": seconds, "dense_s": seconds}.
    """
    body = qmodel.body
    if not isinstance(body, QSequential):
        return {}
    layers, decisions = body.layers, {}
    q, nhwc, i = qmodel.quantize_input(x), False, 0
    while i < len(layers):
        layer, nxt = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        q, run, fused, nhwc = _runner(layer, nxt, q, nhwc)
        if _candidate(layer):
            twin = kernel_twin(layer)
            if not fused or twin.can_fuse_pool(nxt):       # both must run the same step
                t_layer, t_twin = _best_of_pair(lambda: run(layer), lambda: run(twin), repeats)
                t_sparse, t_dense = (t_layer, t_twin) if layer.sparse else (t_twin, t_layer)
                if t_twin < t_layer:
                    body._modules[str(i)] = layer = twin
                decisions[i] = {"sparse": layer.sparse, "sparse_s": t_sparse, "dense_s": t_dense}
        q = run(layer)
        nhwc = nhwc and q.ndim == 4
        i += 2 if fused else 1
    return decisions
