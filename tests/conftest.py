"""Shared fixtures: every test draws its randomness from a seeded ``rng``."""
import os

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seeded_initializers():
    """Layers initialise from tinyeff's global generator: reseed it per test, so a model a test
    builds has the same weights whichever tests ran before it."""
    import tinyeff
    tinyeff.manual_seed(0)


@pytest.fixture(autouse=True)
def _deterministic_conv_lowering(monkeypatch):
    """Tests never time the conv lowerings (kernels/conv/lowering.py) nor write the user's cache: float32
    convolutions take the direct kernels unless a test asks for another TINYEFF_LOWERING."""
    if "TINYEFF_LOWERING" not in os.environ:
        monkeypatch.setenv("TINYEFF_LOWERING", "direct")
