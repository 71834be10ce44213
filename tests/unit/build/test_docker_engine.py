"""What a tier does when a tool it needs is missing: under CI it fails, elsewhere it skips, saying why; what
the harness says when the engine's command is missing; BuildKit's cache records."""

from __future__ import annotations

from pathlib import Path

import pytest
from python_on_whales import DockerClient

from harness.build.docker_engine import cache_records, check_engine
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


def test_cache_records_are_read_from_buildx_du_verbose() -> None:
    listing = (
        "ID:\t\tabc123\nParent:\t\tp\nSize:\t\t1MB\n"
        'Description:\tcached mount /app/target from exec /bin/sh -c cargo build with id "/ns1/app/target"\n'
        "Type:\t\texec.cachemount\n\n"
        "ID:\t\tdef456\nDescription:\tmount / from exec /bin/sh -c apt-get update\n"
    )
    records = cache_records(listing)
    assert records == {
        "abc123": 'cached mount /app/target from exec /bin/sh -c cargo build with id "/ns1/app/target"',
        "def456": "mount / from exec /bin/sh -c apt-get update",
    }
