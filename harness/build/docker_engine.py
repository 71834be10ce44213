"""The Docker engine the builds need: new enough, with buildx; whether a registry is reachable; BuildKit's cache."""

from __future__ import annotations

import logging
import re
import socket
from dataclasses import dataclass

from python_on_whales import DockerClient, DockerException, docker
from python_on_whales.client_config import ClientNotFoundError

from harness.errors import EnvironmentProblem
from harness.proc import run

log = logging.getLogger("harness")

MIN_ENGINE = (23, 0)
"""The first engine whose default builder is BuildKit with a frontend that knows RUN --network."""
MIN_BUILDX = (0, 10)
REGISTRY_HOST = "registry-1.docker.io"
_VERSION = re.compile(r"(\d+)\.(\d+)")
INSTALL_HINT = "on Debian, as root, `mas-harness install-engine` installs and starts one"


@dataclass(frozen=True, kw_only=True)
class Engine:
    server_version: str
    buildx_version: str


def _version_tuple(text: str) -> tuple[int, int]:
    match = _VERSION.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def check_engine(client: DockerClient = docker) -> Engine:
    """The engine and buildx must be new enough for MAS Dockerfiles, or we say exactly what is wrong."""
    try:
        server = client.version().server
    except ClientNotFoundError:
        raise EnvironmentProblem(f"there is no `docker` command on PATH; {INSTALL_HINT}") from None
    except DockerException as exc:
        raise EnvironmentProblem(
            f"no Docker engine answers (`docker version` failed: "
            f"{''.join(str(exc.stderr or exc).strip().splitlines()[-1:])}); {INSTALL_HINT}"
        ) from None
    server_version = server.version if server and server.version else "unknown"
    if _version_tuple(server_version) < MIN_ENGINE:
        raise EnvironmentProblem(
            f"Docker engine {server_version} is too old for MAS Dockerfiles (RUN --network needs >= "
            f"{'.'.join(map(str, MIN_ENGINE))}); {INSTALL_HINT}"
        )
    try:
        buildx = client.buildx.version()
    except DockerException:
        raise EnvironmentProblem(f"the docker buildx plugin is missing; {INSTALL_HINT}") from None
    buildx_version = str(buildx.get("version", buildx) if isinstance(buildx, dict) else buildx)
    if _version_tuple(buildx_version) < MIN_BUILDX:
        raise EnvironmentProblem(f"docker buildx {buildx_version} is too old (need >= 0.10)")
    return Engine(server_version=server_version, buildx_version=buildx_version)


def registry_reachable(host: str = REGISTRY_HOST) -> bool:
    """Air-gapped when the registry's name does not even resolve (it fails fast here, no timeout to wait)."""
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def cache_records(du_verbose: str) -> dict[str, str]:
    """Record id -> description, from `docker buildx du --verbose` (python-on-whales does not wrap it)."""
    records: dict[str, str] = {}
    record_id = None
    for line in du_verbose.splitlines():
        key, _, value = line.partition(":")
        if key == "ID":
            record_id = value.strip()
        elif key == "Description" and record_id:
            records[record_id] = value.strip()
    return records


def prune_cache_mounts(namespace: str, *, builder: str | None = None) -> list[str]:
    """Drop the cache mounts `isolate_cache_mounts` made under this namespace; returns the record ids dropped."""
    selector = ["--builder", builder] if builder else []
    listing = run("docker", "buildx", "du", "--verbose", *selector, check=False)
    if listing.returncode != 0:
        log.warning("could not list BuildKit's cache to prune %s: %s", namespace, listing.stderr.decode().strip())
        return []
    marker = f'with id "/{namespace}/'
    doomed = [rid for rid, text in cache_records(listing.stdout.decode()).items() if marker in text]
    for record_id in doomed:
        run("docker", "buildx", "prune", "--force", "--filter", f"id={record_id}", *selector)
    return doomed
