"""The shipped image run as compose services through pytest-docker's `docker_services`.

With the stand-in (a test double of MAS, in every run): the final image of v1.19.0, its
entrypoint answering `--version` and `build-info`. With a full MAS source (MAS_SOURCE, run by
hand on a quiet machine): the real `mas-cli` generating its configuration, migrating a
PostgreSQL database and serving /health. The compose files are tests/integration/compose*.yaml.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from pytest_docker import Services
from python_on_whales import Container, docker

from tests.support import STANDIN_RELEASE, HarnessBuild

pytestmark = pytest.mark.integration

READY_TIMEOUT = 120.0
SERVER_TIMEOUT = 300.0


def _service(project: str, service: str) -> Container | None:
    labels = (f"com.docker.compose.project={project}", f"com.docker.compose.service={service}")
    found = docker.container.list(all=True, filters=[("label", label) for label in labels])
    return found[0] if found else None


def _exited(project: str, service: str) -> bool:
    """Ready: the one-shot service has run to its end. A non-zero exit can never become ready, so it fails now."""
    container = _service(project, service)
    if container is None or container.state.status != "exited":
        return False
    assert container.state.exit_code == 0, f"{service} exited {container.state.exit_code}: {container.logs()}"
    return True


def test_the_final_image_answers_as_a_compose_service(
    docker_services: Services, docker_compose_project_name: str, harness_build: HarnessBuild
) -> None:
    project = docker_compose_project_name
    for service in ("standin-version", "standin-build-info"):
        docker_services.wait_until_responsive(
            check=lambda service=service: _exited(project, service), timeout=READY_TIMEOUT, pause=0.5
        )
    version = _service(project, "standin-version")
    build_info = _service(project, "standin-build-info")
    assert version is not None and build_info is not None
    built = harness_build(STANDIN_RELEASE)
    assert version.logs().strip() == built.report["version_output"]
    assert version.logs().strip() == f"mas-cli {built.report['build_args']['VERGEN_GIT_DESCRIBE']} (stand-in)"
    info = json.loads(build_info.logs())
    assert info == built.report["build_info"], "the service runs the very binary the builder stage built"
    assert info["standin"] is True
    assert version.config.user == "65532", "compose runs it as the image's own user, distroless's nonroot"
    assert version.config.entrypoint == ["/usr/local/bin/mas-cli"]


def _health(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False


@pytest.mark.full_source
def test_the_real_mas_cli_migrates_postgres_and_serves_health(
    docker_services: Services, docker_ip: str, docker_compose_project_name: str
) -> None:
    project = docker_compose_project_name
    for service in ("mas-config", "mas-migrate"):
        docker_services.wait_until_responsive(
            check=lambda service=service: _exited(project, service), timeout=READY_TIMEOUT, pause=1.0
        )
    url = f"http://{docker_ip}:{docker_services.port_for('mas', 8082)}/health"
    docker_services.wait_until_responsive(check=lambda: _health(url), timeout=SERVER_TIMEOUT, pause=2.0)
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.read() == b"ok"
    server = _service(project, "mas")
    assert server is not None and server.state.running, "the server is up, not restarting"
