"""Shared fixtures: every test draws its randomness from a seeded ``rng``."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
