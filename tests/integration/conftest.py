"""The integration tier needs a real Docker engine with BuildKit."""

from __future__ import annotations

import pytest
from tests.support import unavailable

from harness.build.engine import Engine, check_engine
from harness.errors import EnvironmentProblem


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The integration tier needs a real Docker engine with BuildKit: under CI a missing one fails the run."""
    try:
        return check_engine()
    except EnvironmentProblem as exc:
        unavailable(f"no usable Docker engine: {exc}")
