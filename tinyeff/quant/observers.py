"""Observers: record the values a tensor takes during calibration, then choose its quantization range.

Every observer has the same two halves: ``observe(x)`` records (and returns ``x`` unchanged, so it can
sit in a forward pass) and ``qparams() -> (scale, zero_point)`` computes on demand through
``qparams.compute_qparams``. ``per_channel=True`` keeps one range per index of ``axis`` (axis 0, the
output channel, for weights); otherwise one range for the whole tensor.

The four range rules:
- ``MinMaxObserver``: the running min and max. Exact coverage, but one outlier stretches the grid.
- ``MovingAverageMinMaxObserver``: an exponential moving average of each batch's min and max
  (the rule QAT uses, Jacob et al. 2018 section 3); robust to one odd batch.
- ``PercentileObserver``: clip at the ``percentile``-th value of a histogram of everything seen.
- ``MSEObserver``: search the histogram for the clipping range that minimises the expected squared
  quantization error (rounding noise inside the range plus clipping error outside it).

The last two share ``_Histogram``: a fixed number of bins over a range that grows when new data falls
outside it (old counts are re-binned by their bin centres, a small, documented approximation).
Left out: KL-divergence (entropy) calibration; MSE search covers the same need here.
"""
import numpy as np

from tinyeff.quant.qparams import compute_qparams, qrange

__all__ = ["MinMaxObserver", "MovingAverageMinMaxObserver", "PercentileObserver", "MSEObserver",
           "OBSERVERS", "make_observer"]


def _as_rows(x, per_channel, axis):
    """View ``x`` as (channels, values) for per-channel statistics, or (1, values) per tensor."""
    x = np.asarray(x, dtype=np.float32)
    if not per_channel:
        return x.reshape(1, -1)
    return np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


class Observer:
    """Shared state and ``qparams``; subclasses define ``_update(rows)`` and ``_range()``."""

    def __init__(self, dtype="uint8", symmetric=False, per_channel=False, axis=0):
        qrange(dtype)                                   # validates dtype
        self.dtype, self.symmetric, self.per_channel, self.axis = dtype, symmetric, per_channel, axis
        self.quant_max = qrange(dtype)[1]               # 127 for 7-bit activations (convert sets it)
        self.count = 0                                  # number of observe() calls with data
        self.frozen = False

    def observe(self, x):
        """Record the values of array ``x``; return ``x``. No-op once ``frozen``."""
        if self.frozen:
            return x
        rows = _as_rows(x, self.per_channel, self.axis)
        if rows.size == 0:
            return x
        if self.count and self.per_channel and rows.shape[0] != self._channels:
            raise ValueError(f"{type(self).__name__}: saw {rows.shape[0]} channels along axis {self.axis}, "
                             f"earlier batches had {self._channels}")
        self._channels = rows.shape[0]
        self._update(rows)
        self.count += 1
        return x

    def min_max(self):
        """The chosen (min, max) range: floats, or (C,) arrays per channel."""
        if not self.count:
            raise ValueError(f"{type(self).__name__}: no data observed yet; call observe(x) on calibration "
                             "batches first (calibrating with zero images gives no range)")
        lo, hi = self._range()
        return (lo, hi) if self.per_channel else (float(lo[0]), float(hi[0]))

    def qparams(self):
        """(scale, zero_point) for the observed range; degenerate ranges give (1, 0)."""
        lo, hi = self.min_max()
        return compute_qparams(lo, hi, self.dtype, self.symmetric, self.quant_max)

    def __repr__(self):
        return (f"{type(self).__name__}(dtype={self.dtype}, symmetric={self.symmetric}, "
                f"per_channel={self.per_channel}, count={self.count})")


class MinMaxObserver(Observer):
    """Running minimum and maximum."""

    def _update(self, rows):
        lo, hi = rows.min(axis=1).astype(np.float64), rows.max(axis=1).astype(np.float64)
        if self.count:
            lo, hi = np.minimum(lo, self._lo), np.maximum(hi, self._hi)
        self._lo, self._hi = lo, hi

    def _range(self):
        return self._lo, self._hi


class MovingAverageMinMaxObserver(MinMaxObserver):
    """``min <- (1 - momentum) * min + momentum * batch_min`` (the first batch sets it); same for max."""

    def __init__(self, momentum=0.01, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"MovingAverageMinMaxObserver: momentum={momentum} must be in (0, 1]")
        self.momentum = momentum

    def _update(self, rows):
        lo, hi = rows.min(axis=1).astype(np.float64), rows.max(axis=1).astype(np.float64)
        if self.count:
            m = self.momentum
            lo, hi = (1 - m) * self._lo + m * lo, (1 - m) * self._hi + m * hi
        self._lo, self._hi = lo, hi


class _Histogram:
    """Per-row histograms with ``bins`` bins over a shared, growing [lo, hi] per row."""

    def __init__(self, bins):
        self.bins = bins

    def add(self, rows, first):
        lo, hi = rows.min(axis=1).astype(np.float64), rows.max(axis=1).astype(np.float64)
        if not first:
            lo, hi = np.minimum(lo, self.lo), np.maximum(hi, self.hi)
        hi = np.where(hi > lo, hi, lo + 1e-12)          # a constant row still gets a valid bin width
        counts = np.zeros((rows.shape[0], self.bins))
        for c, row in enumerate(rows):
            counts[c] = np.histogram(row, self.bins, (lo[c], hi[c]))[0]
            if not first:                                # re-bin the old counts by their centres
                centres = self.lo[c] + (np.arange(self.bins) + 0.5) * (self.hi[c] - self.lo[c]) / self.bins
                counts[c] += np.histogram(centres, self.bins, (lo[c], hi[c]), weights=self.counts[c])[0]
        self.lo, self.hi, self.counts = lo, hi, counts

    def centres(self, c):
        width = (self.hi[c] - self.lo[c]) / self.bins
        return self.lo[c] + (np.arange(self.bins) + 0.5) * width, width


class PercentileObserver(Observer):
    """Clip at the ``percentile`` (and, asymmetric, ``100 - percentile``) of all observed values."""

    def __init__(self, percentile=99.99, bins=2048, **kwargs):
        super().__init__(**kwargs)
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"PercentileObserver: percentile={percentile} must be in (50, 100]")
        self.percentile, self._hist = percentile, _Histogram(bins)

    def _update(self, rows):
        self._hist.add(rows, first=not self.count)

    def _range(self):
        h = self._hist
        lo, hi = h.lo.copy(), h.hi.copy()
        for c in range(len(h.counts)):
            cdf = np.cumsum(h.counts[c]) / max(h.counts[c].sum(), 1)
            edges = np.linspace(h.lo[c], h.hi[c], h.bins + 1)
            hi[c] = edges[1 + np.searchsorted(cdf, self.percentile / 100.0)] if self.percentile < 100 else h.hi[c]
            lo[c] = edges[np.searchsorted(cdf, 1 - self.percentile / 100.0)] if self.percentile < 100 else h.lo[c]
        return np.maximum(lo, h.lo), np.minimum(hi, h.hi)


class MSEObserver(Observer):
    """Clipping range minimising the histogram's expected squared quantization error.

    For a candidate [a, b] with step ``s``, a bin at centre ``x`` holding ``n`` values costs
    ``n * s**2 / 12`` if inside (uniform rounding noise) and ``n * (x - clamp(x))**2`` outside.
    Candidates shrink the observed range from each end in ``steps`` steps (both ends independently
    for asymmetric ranges, together for symmetric ones).
    """

    def __init__(self, bins=2048, steps=64, **kwargs):
        super().__init__(**kwargs)
        self.steps, self._hist = steps, _Histogram(bins)

    def _update(self, rows):
        self._hist.add(rows, first=not self.count)

    def _best(self, x, n, lo, hi):
        qmin, qmax = qrange(self.dtype)[0], self.quant_max
        fractions = np.linspace(1.0 / self.steps, 1.0, self.steps)
        if self.symmetric:
            bound = max(-min(lo, 0.0), max(hi, 0.0))
            cands = [(-f * bound, f * bound) for f in fractions]
        else:
            lo0, hi0 = min(lo, 0.0), max(hi, 0.0)
            lo_fractions = fractions if lo0 < 0 else [1.0]     # a ReLU output has nothing below 0
            cands = [(fl * lo0, fh * hi0) for fl in lo_fractions for fh in fractions]
        a = np.array([c[0] for c in cands])[:, None]
        b = np.array([c[1] for c in cands])[:, None]
        step = np.maximum((b - a) / (qmax - qmin), 1e-12)
        clipped = np.clip(x[None, :], a, b)
        cost = (n[None, :] * ((x[None, :] - clipped) ** 2 + step ** 2 / 12.0)).sum(axis=1)
        best = int(np.argmin(cost))
        return cands[best]

    def _range(self):
        h = self._hist
        lo, hi = h.lo.copy(), h.hi.copy()
        for c in range(len(h.counts)):
            x, _ = h.centres(c)
            lo[c], hi[c] = self._best(x, h.counts[c], h.lo[c], h.hi[c])
        return lo, hi


OBSERVERS = {"minmax": MinMaxObserver, "moving-average": MovingAverageMinMaxObserver,
             "percentile": PercentileObserver, "mse": MSEObserver}


def make_observer(name, **kwargs):
    """Build an observer by name: "minmax", "moving-average", "percentile" or "mse"."""
    if name not in OBSERVERS:
        raise ValueError(f"unknown calibration {name!r}; choose one of: {', '.join(OBSERVERS)}")
    return OBSERVERS[name](**kwargs)
