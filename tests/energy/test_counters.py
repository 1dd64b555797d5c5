"""WrapCounter: deltas are exact, never negative, and wraps/resets/gaps are handled (spec §6: 2-5, 14)."""
import pytest

from tinyeff.energy.counters import WrapCounter

RANGE = 65_536_000_000


def counter(range_raw=RANGE):
    return WrapCounter("package-0", 1e-6, range_raw)


def test_plain_delta_is_exact():
    c = counter()
    c.start(1_000_000, 0.0)
    c.update(6_000_000, 1.0)
    assert c.total_j == 5.0


def test_single_wrap_gives_positive_exact_delta():
    c = counter()
    c.start(65_535_000_000, 0.0)
    assert c.update(2_000_000, 1.0) == 3_000_000   # 1 J before the wrap + 2 J after
    assert c.total_j == 3.0


def test_repeated_wraps_with_polling_sum_exactly():
    # 3.5 ranges (229 376 J) in 40 polls of 5734.4 J each, 20 s apart (287 W): every wrap is seen
    c = counter()
    raw, t = 123_456, 0.0
    c.start(raw, t)
    step = RANGE * 35 // 400
    for _ in range(40):
        raw, t = (raw + step) % RANGE, t + 20.0
        c.update(raw, t)
    assert c.total_raw == 40 * step == RANGE * 35 // 10
    assert not c.flags


def test_unreadable_range_drops_backwards_interval_with_warning():
    c = counter(range_raw=None)
    c.start(5_000_000, 0.0)
    c.update(7_000_000, 1.0)
    with pytest.warns(RuntimeWarning, match="unreadable"):
        delta = c.update(1_000_000, 2.0)
    assert delta == 0
    c.update(4_000_000, 3.0)   # counting resumes from the new reading
    assert c.total_j == 5.0
    assert "interval dropped" in c.flags


def test_long_gap_is_flagged_as_possible_missed_wrap():
    c = counter()
    c.start(0, 0.0)
    with pytest.warns(RuntimeWarning, match="whole wrap may be missing"):
        c.update(10_000_000, 200.0)      # 200 s x 400 W = 80 kJ > 65.5 kJ range
    assert "possible missed wrap" in c.flags


def test_backwards_jump_beyond_plausible_is_dropped():
    c = counter()
    c.start(50_000_000_000, 0.0)
    with pytest.warns(RuntimeWarning, match="reset"):
        delta = c.update(1_000_000, 1.0)   # a wrap would mean 15.5 kJ in 1 s
    assert delta == 0 and c.total_raw == 0
