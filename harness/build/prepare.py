"""What `build` and `profile` both need before anything is built: the engine, the ref's patched
Dockerfile, upstream's release profile, the build context, the builder and where its images are
checked, and, without a registry, the local
stand-ins for upstream's base images (the Rust builder's; for the final stage, distroless's) and
the stand-in outputs of the stages that cannot be built here. Everything with a side effect
happens here, so that planning (harness.build.plan) stays pure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness import resources
from harness.analysis.patched import PatchedDockerfile, RunMemo, applying_patch
from harness.analysis.release_profile import ReleaseProfile, release_profile_of
from harness.build.baseimage import LocalRustImage, ensure_rust_base_image
from harness.build.builders import ENGINE_DRIVER, LOCAL_ENGINE, BuildTarget
from harness.build.connect import engine_client, resolve_builder
from harness.build.context import build_context
from harness.build.docker_engine import check_engine, registry_reachable
from harness.build.plan import base_image_need, runtime_suite
from harness.build.runtimeimage import LocalRuntimeImage, ensure_runtime_image
from harness.config.requests import DEFAULT_STAGE, BuildSpec, BuildStage
from harness.config.run import Run
from harness.errors import EnvironmentProblem
from harness.upstream.cache import open_cache

log = logging.getLogger("harness")

STANDIN = "standin"


@dataclass(frozen=True, kw_only=True)
class BuildInputs:
    ref: str
    source: str
    """`standin`, `full` or a path, as the user gave it."""
    patched: PatchedDockerfile
    context: Path
    release: ReleaseProfile
    """Upstream's own [profile.release] at the ref."""
    base_image: LocalRustImage | None
    """The local stand-in for upstream's Rust image: set when no registry is reachable (air-gapped)."""
    work_dir: Path
    stage: BuildStage = DEFAULT_STAGE
    runtime_image: LocalRuntimeImage | None = None
    """For the final stage, air-gapped: the local stand-in for the distroless base."""
    stage_stand_ins: Path | None = None
    """For the final stage, when the `frontend` and `policy` stages cannot be built (air-gapped, or the stand-in
    source, which has no frontend or policies): the directory of their stand-in outputs."""
    target: BuildTarget = LOCAL_ENGINE
    """The builder the build runs on, and where its images are checked."""
    upstream_commit: str | None = None
    """Upstream's own commit id of the ref (what a build trace names)."""

    @property
    def standin(self) -> bool:
        return self.source == STANDIN


def prepare_build(run: Run, spec: BuildSpec, *, ref: str, build_args: Mapping[str, str]) -> BuildInputs:
    """Check the engine and the builder, patch the ref's Dockerfile (off the tree) and get the context and base
    images ready; `build_args` are the spec's, parsed with the command's defaults.

    `air_gapped` None means: air-gapped when the registry's name does not resolve. The builder is resolved first:
    a builder that cannot be used is refused before anything is made.
    """
    source, stage, air_gapped = spec.source, spec.stage, spec.air_gapped
    engine = check_engine()
    log.info("engine %s, buildx %s", engine.server_version, engine.buildx_version)
    target = resolve_builder(spec.builder, load=spec.load, export=spec.export)
    log.info("builder %s; images %s", target.describe(), target.images.describe())
    cache = open_cache(run)
    patched_ref, patched = applying_patch(cache, ref, pins=run.pins, memo=RunMemo(), forced_patch=spec.forced_patch)
    release = release_profile_of(cache, patched_ref.resolved)
    work_dir = run.cache_dir / "work"
    context = build_context(
        source, cache=cache, resolved=patched_ref.resolved, work_dir=work_dir, standin=resources.standin_tree()
    )
    base_image = runtime_image = None
    gapped = air_gapped if air_gapped is not None else not registry_reachable()
    if gapped:
        need = base_image_need(patched.parsed, build_args)
        base_image = ensure_rust_base_image(need.suite, work_dir=work_dir)
    if stage == "final" and gapped:
        suite = runtime_suite(patched.parsed, build_args)
        runtime_image = ensure_runtime_image(suite, work_dir=work_dir) if suite else None
    local_images = [image.tag for image in (base_image, runtime_image) if image is not None]
    if local_images:
        check_builder_has(target, local_images)
    return BuildInputs(
        ref=ref,
        source=source,
        patched=patched,
        context=context,
        release=release,
        base_image=base_image,
        work_dir=work_dir,
        stage=stage,
        runtime_image=runtime_image,
        stage_stand_ins=resources.standin_stages() if stage == "final" and (gapped or source == STANDIN) else None,
        target=target,
        upstream_commit=patched_ref.resolved.upstream_commit,
    )


def check_builder_has(target: BuildTarget, images: list[str]) -> None:
    """An air-gapped build starts from local images (`docker-image://` contexts), which a builder reads from its own
    engine's store: one of another engine must hold them, and a BuildKit without an engine can read none."""
    if target.driver != ENGINE_DRIVER:
        raise EnvironmentProblem(
            f"the air-gapped build starts from the local images {', '.join(images)}, which builder "
            f"{target.name} ({target.driver} driver) cannot read: push them to a registry it reaches and build --online"
        )
    if target.context is None:
        return
    client = engine_client(target.context)
    missing = [tag for tag in images if not client.image.exists(tag)]
    if missing:
        raise EnvironmentProblem(
            f"builder {target.name}'s engine (docker context {target.context}) lacks the local base image(s) "
            f"{', '.join(missing)} the air-gapped build starts from: "
            + "; ".join(f"docker save {tag} | docker --context {target.context} load" for tag in missing)
        )
