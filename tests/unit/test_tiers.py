"""What a tier does when a tool it needs is missing: under CI it fails, elsewhere it skips, saying why; and what
the harness says when the engine's command is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from python_on_whales import DockerClient

from harness.build.docker_engine import check_engine
from harness.errors import EnvironmentProblem
from tests.support import unavailable


def test_under_ci_a_missing_engine_fails_the_run() -> None:
    with pytest.raises(pytest.fail.Exception, match="CI=true and no usable Docker engine"):
        unavailable("no usable Docker engine", env={"CI": "true"})


@pytest.mark.parametrize("env", [{}, {"CI": "false"}, {"CI": ""}])
def test_elsewhere_a_missing_engine_skips_with_the_reason(env: dict[str, str]) -> None:
    with pytest.raises(pytest.skip.Exception, match="no usable Docker engine"):
        unavailable("no usable Docker engine", env=env)


def test_a_machine_without_the_docker_command_is_told_so(tmp_path: Path) -> None:
    # A docker CLI that does not exist: nothing is contacted.
    with pytest.raises(EnvironmentProblem, match="no `docker` command on PATH"):
        check_engine(DockerClient(client_call=[str(tmp_path / "no-docker")]))
