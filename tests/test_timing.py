"""tinyeff.timing: the helpers time what they are given, warm up first and interleave candidates."""
from tinyeff import timing


def _counter():
    calls = []
    return calls, lambda: calls.append(None)


def test_side_by_side_interleaves_one_call_per_turn_with_zero_min_time():
    (a_calls, a), (b_calls, b) = _counter(), _counter()
    seconds = timing.time_side_by_side({"a": a, "b": b}, rounds=4, min_time_s=0.0)
    assert len(a_calls) == len(b_calls) == 1 + 4          # warm-up + one call per round
    assert set(seconds) == {"a", "b"} and all(median >= 0 and iqr >= 0 for median, iqr in seconds.values())


def test_median_time_runs_at_least_min_repeats_after_warmup():
    calls, fn = _counter()
    median, iqr, n = timing.median_time(fn, min_time_s=0.0, min_repeats=3, warmup=2)
    assert n == 3 and len(calls) == 5 and median >= 0


def test_best_time_is_the_fastest_call():
    calls, fn = _counter()
    assert timing.best_time_s(fn, 3) >= 0 and len(calls) == 4
