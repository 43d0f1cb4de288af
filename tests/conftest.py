"""Shared test fixtures. Every random source is seeded; hypothesis runs derandomized."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

# Deterministic examples, and no per-example deadline (CI machines are shared and noisy).
settings.register_profile("shiftrnn", derandomize=True, deadline=None)
settings.load_profile("shiftrnn")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy generator, fresh for each test."""
    return np.random.default_rng(20240611)
