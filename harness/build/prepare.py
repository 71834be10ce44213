"""What `build` and `profile` both need before anything is built: the engine, the ref's patched
Dockerfile, upstream's release profile, the build context, and, without a registry, the local
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
from harness.analysis.patched import applying_patch
from harness.analysis.release_profile import ReleaseProfile, release_profile_of
from harness.build.baseimage import LocalRustImage, ensure_rust_base_image
from harness.build.context import build_context
from harness.build.docker_engine import check_engine, registry_reachable
from harness.build.plan import BuildStage, base_image_need, runtime_suite
from harness.build.runtimeimage import LocalRuntimeImage, ensure_runtime_image
from harness.config.settings import Settings
from harness.upstream.cache import open_cache

log = logging.getLogger("harness")

STANDIN = "standin"


@dataclass(frozen=True, kw_only=True)
class BuildInputs:
    ref: str
    source: str
    """`standin`, `full` or a path, as the user gave it."""
    patched_dockerfile: bytes
    context: Path
    release: ReleaseProfile
    """Upstream's own [profile.release] at the ref."""
    base_image: LocalRustImage | None
    """The local stand-in for upstream's Rust image: set when no registry is reachable (air-gapped)."""
    work_dir: Path
    stage: BuildStage = "builder"
    runtime_image: LocalRuntimeImage | None = None
    """For the final stage, air-gapped: the local stand-in for the distroless base."""
    stage_stand_ins: Path | None = None
    """For the final stage, when the `frontend` and `policy` stages cannot be built (air-gapped, or the stand-in
    source, which has no frontend or policies): the directory of their stand-in outputs."""
    upstream_commit: str | None = None
    """Upstream's own commit id of the ref (what a build trace names)."""

    @property
    def standin(self) -> bool:
        return self.source == STANDIN


def prepare_build(  # noqa: PLR0913  # each an independent choice of the user; keyword-only
    settings: Settings,
    *,
    ref: str,
    source: str,
    forced_patch: Path | None = None,
    build_args: Mapping[str, str] | None = None,
    air_gapped: bool | None = None,
    stage: BuildStage = "builder",
) -> BuildInputs:
    """Check the engine, patch the ref's Dockerfile (off the tree) and get the context and base images ready.

    `air_gapped` None means: air-gapped when the registry's name does not resolve.
    """
    engine = check_engine()
    log.info("engine %s, buildx %s", engine.server_version, engine.buildx_version)
    cache = open_cache(settings)
    patched_ref, patched = applying_patch(cache, ref, pins=settings.pins, forced_patch=forced_patch)
    release = release_profile_of(cache, patched_ref.resolved)
    work_dir = settings.cache_dir / "work"
    context = build_context(
        source, cache=cache, resolved=patched_ref.resolved, work_dir=work_dir, standin=resources.standin_tree()
    )
    base_image = runtime_image = None
    gapped = air_gapped if air_gapped is not None else not registry_reachable()
    if gapped:
        need = base_image_need(patched, build_args or {})
        base_image = ensure_rust_base_image(need.suite, work_dir=work_dir)
    if stage == "final" and gapped:
        suite = runtime_suite(patched, build_args or {})
        runtime_image = ensure_runtime_image(suite, work_dir=work_dir) if suite else None
    return BuildInputs(
        ref=ref,
        source=source,
        patched_dockerfile=patched,
        context=context,
        release=release,
        base_image=base_image,
        work_dir=work_dir,
        stage=stage,
        runtime_image=runtime_image,
        stage_stand_ins=resources.standin_stages() if stage == "final" and (gapped or source == STANDIN) else None,
        upstream_commit=patched_ref.resolved.upstream_commit,
    )
