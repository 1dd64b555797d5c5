"""Sparse or dense int8 kernels, layer by layer: measured on this machine, on the activations each layer sees.

``convert`` marks a layer sparse when its int8 weight is at least ``qmodules.SPARSE_MIN`` zeros. Whether
the sparse kernel then wins depends on the layer's shape and the CPU (a pruned 3x3 conv on NHWC beats
the dense GEMM long before 90%; a small pruned linear layer may lose to it; on AVX2 a narrow conv with
one input channel runs faster on the sparse NHWC kernel even at 0% sparsity), so
``choose_sparse_kernels`` times each sparse layer, and each dense stride-1 conv the sparse NHWC kernel
could run, against its twin on a real batch, in the layout and fusion the integer model runs it
(NHWC, conv + max-pool fused), and keeps the faster. Both kernels compute the same integers, so the
choice changes speed only. Left out: residual blocks (their layers keep the rule).

A flatten followed by a requantized linear layer is a third case: the linear layer on the NCHW-flattened
(C, H, W) map is a conv whose (H, W) kernel covers the map (its weight ``reshape(OUT, C, H, W)``,
padding 0, a 1x1 output), and as a conv it reads the NHWC activations directly: no transpose before the
flatten, and the sparse NHWC kernel with the requantization fused. ``choose_sparse_kernels`` times that
conv, sparse and dense, against flatten + linear, and where one is faster the body runs it, then the
flatten of its (N, 1, 1, OUT) output, which is a reshape in either layout.
"""
from tinyeff.kernels.stopwatch import race
from tinyeff.quant.qmodules import QConv2d, QFlatten, QLinear, QSequential, QWeighted
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


def linear_as_conv(linear, shape, sparse):
    """``linear`` (a requantized QLinear on the NCHW flatten of an (N, C, H, W) map) as the QConv2d with
    one (H, W) kernel on that map: the same sums term by term, so the same codes. None if it does not apply."""
    _, c, h, w = shape
    if not isinstance(linear, QLinear) or linear.out_qparams is None or h * w == 1 \
            or linear.weight_q.shape[1] != c * h * w:
        return None
    weight = linear.weight_q.reshape(-1, c, h, w)
    return QConv2d(weight, linear.weight_scale, linear.bias_q, linear.in_qparams, linear.out_qparams, 1, 0,
                   relu=linear.relu, sparse=sparse, act_qmax=linear.act_qmax)


def _choose_linear_as_conv(flatten, linear, q, repeats):
    """For NHWC ``q`` entering ``flatten`` then ``linear``: the fastest of the two as they are and the
    linear layer as a sparse or a dense conv (``linear_as_conv``). Returns (conv or None, decision)."""
    n, h, w, c = q.shape
    convs = [m for m in (linear_as_conv(linear, (n, c, h, w), s) for s in (True, False)) if m is not None]
    if not convs:
        return None, None
    times, k, _ = race([lambda: linear(flatten.forward_nhwc(q))] + [lambda m=m: m.forward_nhwc(q) for m in convs],
                       repeats)
    best = convs[k - 1] if k else None
    return best, {"linear_as_conv": best is not None, "sparse": bool(best is not None and best.sparse),
                  "flatten_linear_s": times[0], **{f"{'sparse' if m.sparse else 'dense'}_conv_s": t
                                                   for m, t in zip(convs, times[1:])}}


def choose_sparse_kernels(qmodel, x, repeats=11, sparse_twins=True):
    """Give each candidate layer of ``qmodel.body`` (see ``_candidate``) the faster of its sparse and dense kernels.

    Args:
        qmodel: a ``QuantizedModel`` whose body is a ``QSequential`` (other bodies are left as they are).
        x: a float input batch, preprocessed as the model expects (N, C, H, W).
        repeats: rounds, each timing every kernel once (``kernels.stopwatch.race``: the median in-round time ratio
            decides; the fastest call of each is reported).
        sparse_twins: False leaves every layer's kind of kernel as it is and only decides the
            flatten + linear pairs (a dense model: its linear layer as a dense conv skips the transpose).
    Returns:
        dict layer index -> {"sparse": bool chosen, "sparse_s": seconds, "dense_s": seconds}; for a
        flatten + linear pair, at the flatten's index, ``_choose_linear_as_conv``'s decision.
    """
    body = qmodel.body
    if not isinstance(body, QSequential):
        return {}
    layers, decisions = body.layers, {}
    q, nhwc, i = qmodel.quantize_input(x), False, 0
    while i < len(layers):
        layer, nxt = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        chosen = False
        if isinstance(layer, QFlatten) and q.ndim == 4 and nhwc and isinstance(nxt, QLinear) \
                and not (nxt._forward_hooks or nxt._forward_pre_hooks):      # hooks see the layers as built
            conv, decision = _choose_linear_as_conv(layer, nxt, q, repeats)
            if decision is not None:
                decisions[i], chosen = decision, True
            if conv is not None:                    # conv, then the flatten (a reshape of its 1x1 output)
                body._modules[str(i)], body._modules[str(i + 1)] = conv, layer
                layers[i], layers[i + 1] = conv, layer
                layer, nxt = conv, layer
        q, run, fused, nhwc = _runner(layer, nxt, q, nhwc)
        if sparse_twins and _candidate(layer) and not chosen:
            twin = kernel_twin(layer)
            if not fused or twin.can_fuse_pool(nxt):       # both must run the same step
                (t_layer, t_twin), k, _ = race([lambda: run(layer), lambda: run(twin)], repeats)
                t_sparse, t_dense = (t_layer, t_twin) if layer.sparse else (t_twin, t_layer)
                if k == 1:
                    body._modules[str(i)] = layer = twin
                decisions[i] = {"sparse": layer.sparse, "sparse_s": t_sparse, "dense_s": t_dense}
        q = run(layer)
        nhwc = nhwc and q.ndim == 4
        i += 2 if fused else 1
    return decisions
