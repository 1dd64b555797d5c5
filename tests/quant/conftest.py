"""Shared fixtures of the quantization tests."""
import numpy as np
import pytest

from tinyeff import no_grad


@pytest.fixture
def assert_same_logits_on_every_cap(monkeypatch):
    """Check that ``model(x)`` gives identical logits with no cap, under the AVX2 cap and under the
    empty cap (portable code): int8 results must not depend on the ISA path."""
    def check(model, x):
        logits = {}
        for cap in (None, "avx2,fma", ""):
            if cap is None:
                monkeypatch.delenv("TINYEFF_CPU_FEATURES", raising=False)
            else:
                monkeypatch.setenv("TINYEFF_CPU_FEATURES", cap)
            with no_grad():
                logits[cap] = model(x).data
        for cap, out in logits.items():
            np.testing.assert_array_equal(out, logits[None], err_msg=f"TINYEFF_CPU_FEATURES={cap!r}")
    return check
