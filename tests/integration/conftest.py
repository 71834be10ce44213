"""The integration tier needs a real Docker engine with BuildKit."""

from __future__ import annotations

import os

import pytest

from harness.build.engine import Engine, check_engine
from harness.errors import EnvironmentProblem


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The integration tier needs a real Docker engine with BuildKit: under CI a missing one fails the run."""
    try:
        return check_engine()
    except EnvironmentProblem as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and no usable Docker engine: {exc}")
        pytest.skip(str(exc))
