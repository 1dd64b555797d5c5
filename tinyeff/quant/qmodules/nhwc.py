"""Running integer layers in sequence, in NHWC wherever the layers allow: ``QSequential`` and ``QBasicBlock``.

The scheduler's one idea: a conv's GEMM output (N*OH*OW, OC) *is* the next layer's NHWC input, so
across a run of NHWC-capable layers activations stay NHWC and transposes happen only where the run
starts and ends; a conv followed by a 2x2 / stride-2 max-pool runs as one GEMM that pools its int32
sums. ``forward`` takes and returns NCHW like the float model (see ``qmodules``'s docstring).
"""
from tinyeff.quant.qmodules.base import QLayer, to_nchw, to_nhwc
from tinyeff.quant.qmodules.weighted import QConv2d


def runs_nhwc(layer):
    """NHWC-capable and unhooked: a hooked layer (``tinyeff.flops`` reads the shapes each layer sees)
    is called through ``Module.__call__``, in NCHW, so its hooks run and see what the float model's would."""
    return layer.nhwc and not layer._forward_hooks and not layer._forward_pre_hooks


class QSequential(QLayer):
    """Runs integer layers in order, in NHWC across every run of layers that accept it (module docstring)."""
    nhwc = True

    def __init__(self, layers):
        super().__init__()
        for i, layer in enumerate(layers):
            self._modules[str(i)] = layer           # children "0", "1", ...: named like nn.Sequential's

    @property
    def layers(self):
        return list(self._modules.values())

    def forward(self, q):
        return self._run(q, in_nhwc=False, out_nhwc=False)

    def forward_nhwc(self, q):
        return self._run(q, in_nhwc=True, out_nhwc=True)

    def forward_from_nhwc(self, q):
        """(N, H, W, C) input, output in the model's own layout (NCHW if it is 4-D): what
        ``QuantizedModel`` runs after quantizing its input straight to NHWC."""
        return self._run(q, in_nhwc=True, out_nhwc=False)

    def _run(self, q, in_nhwc, out_nhwc):
        nhwc = in_nhwc                                     # layout of q while it is 4-D
        layers, i = self.layers, 0
        while i < len(layers):
            layer = layers[i]
            i += 1
            if q.ndim == 4 and runs_nhwc(layer):
                if not nhwc:
                    q, nhwc = to_nhwc(q), True
                if isinstance(layer, QConv2d) and i < len(layers) and layer.can_fuse_pool(layers[i]) \
                        and runs_nhwc(layers[i]):
                    q = layer.forward_nhwc(q, pool=2)      # conv + ReLU + max-pool in one GEMM
                    i += 1
                else:
                    q = layer.forward_nhwc(q)
            else:
                if q.ndim == 4 and nhwc:
                    q = to_nchw(q)
                nhwc = False
                q = layer(q)
            if q.ndim != 4:                                # flattened: layout no longer matters
                nhwc = out_nhwc
        if q.ndim == 4 and nhwc != out_nhwc:
            q = to_nhwc(q) if out_nhwc else to_nchw(q)
        return q

    def simulate(self, q):
        for layer in self.layers:
            q = layer.simulate(q)
        return q

    def nbytes(self):
        return sum(layer.nbytes() for layer in self.layers)


class QBasicBlock(QLayer):
    """ResNet basic block: conv1 (+ReLU) -> conv2, shortcut (identity or 1x1 conv), QAdd (+ReLU)."""
    nhwc = True

    def __init__(self, conv1, conv2, shortcut, add):
        super().__init__()
        self.conv1, self.conv2, self.shortcut, self.add = conv1, conv2, shortcut, add

    def _run(self, q, how):
        def run(layer, *inputs):              # "forward": through __call__, so hooks run
            return layer(*inputs) if how == "forward" else getattr(layer, how)(*inputs)
        out = run(self.conv2, run(self.conv1, q))
        if self.add is None:                   # shortcut=False: a plain block, ReLU fused into conv2
            return out
        skip = q if self.shortcut is None else run(self.shortcut, q)
        return run(self.add, out, skip)

    def forward(self, q):
        return self._run(q, "forward")

    def forward_nhwc(self, q):
        parts = [m for m in (self.conv1, self.conv2, self.shortcut, self.add) if m is not None]
        if not all(runs_nhwc(m) for m in parts):            # a traced part runs in NCHW
            return to_nhwc(self.forward(to_nchw(q)))
        return self._run(q, "forward_nhwc")

    def simulate(self, q):
        return self._run(q, "simulate")

    def nbytes(self):
        return sum(m.nbytes() for m in (self.conv1, self.conv2, self.shortcut, self.add) if m is not None)
