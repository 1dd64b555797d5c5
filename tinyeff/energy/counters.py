"""Wraparound-safe accumulation of a hardware energy counter.

RAPL counters are 32 bits wide in hardware; powercap exposes them in µJ modulo
``max_energy_range_uj`` (65 536 J with the usual 2^-16 J unit, one wrap every ~11 min at 100 W).
``WrapCounter`` turns a series of raw readings into a running total that is never negative:

* raw went up: delta = now - last;
* raw went down and the range is known: one wrap, delta = range - last + now (exact in integer
  counts; the poller in ``meter.py`` reads often enough that two wraps never fall between reads);
* raw went down and the range is unknown: the interval is dropped, with a warning;
* a "wrap" that would mean more than ``p_max_w`` over the interval is a reset (driver reload),
  not a wrap: the interval is dropped, with a warning;
* a gap longer than range / p_max_w may hide a whole wrap: the total is flagged.

Everything is kept in the counter's own integer units so sums are exact; ``unit_j`` converts.
What this file leaves out: reading counters (backends) and threads (``meter.py``).
"""
import warnings

DEFAULT_P_MAX_W = 400.0   # per counter; bounds plausible deltas and sets the poll period
MIN_PLAUSIBILITY_S = 0.01  # counters tick every ~1 ms, so never judge a shorter interval


class WrapCounter:
    """Accumulate one counter's raw readings into a total, handling wraps exactly.

    Args:
        name: domain name used in warnings, e.g. ``"package-0"``.
        unit_j: joules per raw count (1e-6 for powercap µJ).
        range_raw: the counter's modulus in raw counts, or None if unknown or if it never wraps.
        p_max_w: the largest believable power of this domain, in watts.
    """

    def __init__(self, name, unit_j, range_raw=None, p_max_w=DEFAULT_P_MAX_W):
        self.name = name
        self.unit_j = unit_j
        self.range_raw = range_raw
        self.p_max_w = p_max_w
        self.total_raw = 0
        self.warnings = []
        self.flags = set()
        self._last = None
        self._last_t = None

    def start(self, raw, t):
        """Set the first reading (at time ``t`` in seconds); the total starts at zero."""
        self._last, self._last_t = raw, t

    def update(self, raw, t):
        """Fold in a new reading; return the delta in raw counts that was added (always >= 0)."""
        if self._last is None:
            self.start(raw, t)
            return 0
        last, dt = self._last, t - self._last_t
        self._last, self._last_t = raw, t
        max_plausible = self.p_max_w * max(dt, MIN_PLAUSIBILITY_S) / self.unit_j
        if self.range_raw is not None and dt * self.p_max_w / self.unit_j > self.range_raw:
            self._flag("possible missed wrap",
                       f"{self.name}: {dt:.1f} s between reads is longer than the counter range "
                       f"allows at {self.p_max_w:.0f} W; a whole wrap may be missing (poll more often)")
        if raw >= last:
            delta = raw - last
            if delta > max_plausible:
                self._flag("implausible jump",
                           f"{self.name}: {delta * self.unit_j:.3g} J in {dt:.3g} s is above "
                           f"{self.p_max_w:.0f} W; kept, but check the counter")
        elif self.range_raw is None:
            self._flag("interval dropped",
                       f"{self.name}: counter went backwards ({last} -> {raw}) and its range "
                       f"(max_energy_range_uj) is unreadable, so the wrap cannot be undone; "
                       f"{dt:.3g} s of energy dropped")
            delta = 0
        else:
            delta = self.range_raw - last + raw
            if delta > max_plausible:
                self._flag("interval dropped",
                           f"{self.name}: counter jumped backwards ({last} -> {raw}) by more than a "
                           f"wrap at {self.p_max_w:.0f} W explains (reset or driver reload?); "
                           f"{dt:.3g} s of energy dropped")
                delta = 0
        self.total_raw += delta
        return delta

    @property
    def total_j(self):
        return self.total_raw * self.unit_j

    def _flag(self, flag, message):
        self.flags.add(flag)
        self.warnings.append(message)
        warnings.warn(f"tinyeff.energy: {message}", RuntimeWarning, stacklevel=3)
