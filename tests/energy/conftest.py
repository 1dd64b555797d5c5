"""Fixtures for the energy tests: fake trees and clock (see energy_fakes.py); tests never sleep."""
import pytest

from energy_fakes import RANGE_UJ, FakeClock, FakePowercap
from tinyeff.energy.base import Domain


@pytest.fixture
def powercap(tmp_path):
    return FakePowercap(tmp_path)


@pytest.fixture
def clock():
    return FakeClock(100.0)


@pytest.fixture
def fake_domain():
    return Domain("package-0", 1e-6, RANGE_UJ, "fake")


