"""Reaching a builder: what buildx and its engine say of it, the docker CLI that talks to the engine an image is in,
and copying an image between engines. The decisions are harness.build.builders' (pure)."""

from __future__ import annotations

import dataclasses
import logging
import subprocess

from python_on_whales import DockerClient, DockerException, docker
from python_on_whales.client_config import ClientNotFoundError

from harness.build.builders import ENGINE_DRIVER, BuilderFacts, BuildTarget, plan_target
from harness.build.docker_engine import INSTALL_HINT, check_engine
from harness.errors import BadInput, EnvironmentProblem
from harness.knobs import ExportFormat

log = logging.getLogger("harness")

CONTAINERD_STORE = "io.containerd.snapshotter"
"""An engine whose image store is containerd's (its `docker info` driver-type) exports OCI and docker tarballs."""


def engine_client(context: str | None) -> DockerClient:
    """The docker CLI talking to the engine of `context` (None: the current context's)."""
    return docker if context is None else DockerClient(context=context)


# -- asking buildx and docker ------------------------------------------------------------------------------------


def _last_line(exc: DockerException) -> str:
    text = str(exc.stderr or exc).strip().splitlines()
    return text[-1] if text else f"exit {exc.return_code}"


def _context_host(client: DockerClient, name: str | None) -> str | None:
    try:
        context = client.context.inspect(name)
    except DockerException:
        return None
    endpoint = context.endpoints.get("docker")
    return endpoint.host if endpoint else None


def builder_facts(name: str | None) -> BuilderFacts:
    """Ask buildx about the builder (None: the current one), starting it if its driver starts on demand."""
    shown = name or "the current builder"
    try:
        builder = docker.buildx.inspect(name)
        node = builder.nodes[0] if builder.nodes else None
        if node is not None and builder.driver != ENGINE_DRIVER and node.status != "running":
            # docker-container and kubernetes builders start on first use; bootstrap now, to see their platforms.
            builder = docker.buildx.inspect(name, bootstrap=True)
            node = builder.nodes[0] if builder.nodes else None
    except ClientNotFoundError:
        raise EnvironmentProblem(f"there is no `docker` command on PATH; {INSTALL_HINT}") from None
    except DockerException as exc:
        if "no builder" in _last_line(exc):
            raise BadInput(
                f"--builder {name}: buildx knows no such builder (`docker buildx ls` lists them; `docker buildx "
                "create` or `docker context create` makes one)"
            ) from None
        raise EnvironmentProblem(f"{shown} does not answer: {_last_line(exc)}") from None
    if node is None:
        raise EnvironmentProblem(f"builder {builder.name} has no node to build on")
    facts = BuilderFacts(
        name=builder.name or shown,
        driver=builder.driver or "unknown",
        status=node.status or "unknown",
        platforms=tuple(node.platforms or ()),
        endpoint=node.endpoint or "",
    )
    if builder.driver != ENGINE_DRIVER:
        return facts
    return _engine_facts(facts)


def _engine_facts(facts: BuilderFacts) -> BuilderFacts:
    """A docker-driver builder: is its engine the local one, does it answer, is it new enough, can it export."""
    context = facts.endpoint
    local_host = _context_host(docker, None)
    on_local = local_host is not None and _context_host(docker, context) == local_host
    client = docker if on_local else DockerClient(context=context)
    try:
        check_engine(client)
        driver_status = client.info().driver_status or []
    except EnvironmentProblem as exc:
        raise EnvironmentProblem(f"builder {facts.name}: its engine (docker context {context}): {exc}") from None
    except DockerException as exc:
        raise EnvironmentProblem(f"builder {facts.name}: its engine does not answer: {_last_line(exc)}") from None
    exports = any(CONTAINERD_STORE in str(value) for entry in driver_status for value in entry)
    return dataclasses.replace(
        facts,
        on_local_engine=on_local,
        on_this_machine=bool(local_host and local_host.startswith("unix://")),
        engine_exports=exports,
    )


def resolve_builder(name: str | None, *, load: bool = False, export: ExportFormat | None = None) -> BuildTarget:
    """The build target for `--builder NAME` (None: buildx's current builder, the local engine's unless changed)."""
    return plan_target(builder_facts(name), named=name, load=load, export=export)


def docker_argv(target: BuildTarget) -> list[str]:
    """`docker` as the build's buildx commands are run: under the builder's context, if it has one of its own."""
    return ["docker", "--context", target.context] if target.context else ["docker"]


def copy_image(tag: str, *, from_context: str) -> None:
    """`docker --context FROM save TAG | docker load`: the whole image crosses, as `--load` does for other drivers."""
    log.info("copying %s from docker context %s into the local engine", tag, from_context)
    with subprocess.Popen(["docker", "--context", from_context, "save", tag], stdout=subprocess.PIPE) as save:
        loaded = subprocess.run(["docker", "load", "--quiet"], stdin=save.stdout, capture_output=True, check=False)
    if save.returncode != 0 or loaded.returncode != 0:
        reason = loaded.stderr.decode().strip() or "docker save failed"
        raise EnvironmentProblem(f"could not copy {tag} from docker context {from_context}: {reason}")


def remove_images(tags: list[str], *, target: BuildTarget) -> None:
    """Remove images the harness made, wherever the build put them (the builder's engine, the local one, or both)."""
    homes = {target.images.context, target.images.copy_from} if target.images.kind != "export" else set()
    for context in homes:
        client = engine_client(context)
        present = [tag for tag in tags if client.image.exists(tag)]
        if present:
            try:
                client.image.remove(present, force=True)
            except DockerException as exc:
                log.warning("could not remove %s: %s", present, _last_line(exc))
