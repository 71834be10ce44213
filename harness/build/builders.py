"""Which BuildKit runs a build, how the harness reaches it, and where the images it makes are checked.

`--builder NAME` names a buildx builder; its driver decides the rest:

- `docker`: the builder is a Docker engine's own BuildKit, and what it builds lands in that engine. When that
  engine is the one the current docker context talks to (the local engine), everything is as without
  `--builder`. Otherwise the builder is reached through its docker context only (`docker --context NAME buildx
  build`: buildx refuses `--builder NAME` from another context), and its images are run there too.
- `docker-container`, `remote`, `kubernetes`: BuildKit keeps what it builds in its own cache, where nothing can
  run it. `--load` sends the image to the local engine (the whole image over the wire); `--export oci|docker`
  writes it as a tarball into the report directory, where the harness reads its files and configuration
  without ever running its binary on this machine.

`plan_target()` decides from what buildx and docker said (`BuilderFacts`) and is pure; harness.build.connect
asks them. Every refusal is one line: a mistake (an unknown builder, no place to check the image) is exit 2; a
builder that does not answer, cannot build for this machine's architecture or cannot export is exit 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.errors import BadInput, EnvironmentProblem
from harness.knobs import TARGETARCH, ExportFormat

ImageHomeKind = Literal["local-engine", "builder-engine", "export"]
PLATFORM = f"linux/{TARGETARCH}"
"""The platform every build is for: the binary the checks run is the TARGETARCH one."""
ENGINE_DRIVER = "docker"
RUN_HINT = "--load (checked in the local engine) or --export oci (its files and configuration read, nothing run)"


@dataclass(frozen=True, kw_only=True)
class BuilderFacts:
    """What `docker buildx inspect` and the builder's engine said of a builder."""

    name: str
    driver: str
    status: str
    platforms: tuple[str, ...]
    endpoint: str
    """The first node's endpoint: for the docker driver, the docker context of its engine."""
    on_local_engine: bool = False
    """Docker driver: its engine is the one the current docker context talks to."""
    on_this_machine: bool = False
    """Docker driver: its engine listens on a unix socket here, so its build processes are in this process table."""
    engine_exports: bool = False
    """Docker driver: its engine has the containerd image store, so the builder can export tarballs."""


@dataclass(frozen=True, kw_only=True)
class ImageHome:
    """Where the images of a build are when the harness checks them."""

    kind: ImageHomeKind
    context: str | None = None
    """The docker context of the engine that holds them (None: the current one)."""
    export_format: ExportFormat | None = None
    copy_from: str | None = None
    """`--load` from a docker-driver builder of another engine: the context the image is copied from."""

    @property
    def runs_binaries(self) -> bool:
        """An exported image is read, never run: its binary would run on this machine, unconfined."""
        return self.kind != "export"

    def describe(self) -> str:
        if self.kind == "export":
            return f"exported as an {self.export_format} tarball into the report directory; read, not run"
        if self.kind == "builder-engine":
            return f"in the builder's own engine (docker context {self.context}); checked there"
        if self.copy_from:
            return f"copied from the builder's engine (docker context {self.copy_from}) into the local engine"
        return "in the local engine; checked there"

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "context": self.context,
            "export_format": self.export_format,
            "copied_from": self.copy_from,
            "runs_binaries": self.runs_binaries,
            "description": self.describe(),
        }


@dataclass(frozen=True, kw_only=True)
class BuildTarget:
    """How a build reaches its builder, and where its images are checked."""

    name: str | None
    """The builder as the user named it; None: the current one."""
    driver: str
    context: str | None
    """Run buildx under this docker context (a docker-driver builder of another engine); None: the current one."""
    builder_arg: str | None
    """`--builder` for buildx; None: the context's own."""
    processes_visible: bool
    """The build runs in an engine of this machine: its processes are in this machine's process table."""
    images: ImageHome

    @property
    def load(self) -> bool:
        """buildx `--load`: the docker driver stores into its engine anyway; the others send the image here."""
        return self.images.kind == "local-engine" and self.driver != ENGINE_DRIVER

    def describe(self) -> str:
        name = self.name or "the current builder"
        where = "the local engine" if self.context is None and self.driver == ENGINE_DRIVER else "its own engine"
        return f"{name} ({self.driver} driver) on {where}"

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "driver": self.driver,
            "context": self.context,
            "processes_visible": self.processes_visible,
        }


LOCAL_ENGINE = BuildTarget(
    name=None,
    driver=ENGINE_DRIVER,
    context=None,
    builder_arg=None,
    processes_visible=True,
    images=ImageHome(kind="local-engine"),
)
"""Builds on the local engine's own BuildKit, images checked there (unit tests and plans without a builder)."""


def plan_target(facts: BuilderFacts, *, named: str | None, load: bool, export: ExportFormat | None) -> BuildTarget:
    """How to build on the builder `facts` describes and where its images are checked; refuses what cannot work."""
    label = f"builder {facts.name} ({facts.driver} driver)"
    if load and export:
        raise BadInput("--load and --export are two places for the same image: choose one")
    if facts.status != "running":
        raise EnvironmentProblem(f"{label} does not answer (status {facts.status}): start it, or name another")
    if PLATFORM not in facts.platforms:
        builds = ", ".join(facts.platforms) or "no platform"
        raise EnvironmentProblem(
            f"{label} builds for {builds}, not {PLATFORM}: the harness builds and runs the TARGETARCH {TARGETARCH} "
            "binary; name a builder with a node of that platform"
        )
    if facts.driver == ENGINE_DRIVER:
        return _engine_target(facts, named=named, load=load, export=export, label=label)
    if load:
        images = ImageHome(kind="local-engine")
    elif export:
        images = ImageHome(kind="export", export_format=export)
    else:
        raise BadInput(f"{label} keeps what it builds in its own cache, where nothing can run it: add {RUN_HINT}")
    return BuildTarget(
        name=named, driver=facts.driver, context=None, builder_arg=facts.name, processes_visible=False, images=images
    )


def _engine_target(
    facts: BuilderFacts, *, named: str | None, load: bool, export: ExportFormat | None, label: str
) -> BuildTarget:
    context = None if facts.on_local_engine else facts.endpoint
    if export and not facts.engine_exports:
        raise EnvironmentProblem(
            f"{label} cannot export an image (its engine has no containerd image store): drop --export, its images "
            f"are checked in {'the local engine' if context is None else f'its own engine (context {context})'}"
        )
    if export:
        images = ImageHome(kind="export", export_format=export)
    elif context is None:
        images = ImageHome(kind="local-engine")
    elif load:
        images = ImageHome(kind="local-engine", copy_from=context)
    else:
        images = ImageHome(kind="builder-engine", context=context)
    return BuildTarget(
        name=named,
        driver=facts.driver,
        context=context,
        builder_arg=facts.name,
        processes_visible=context is None and facts.on_this_machine,
        images=images,
    )
