"""What to build: the patched Dockerfile's build copy, its build args and contexts, and every deviation from upstream.

Planning is pure: `plan_build()` and `plan_final()` read nothing and run nothing. What
they need from the machine (the local stand-ins for upstream's base images when no
registry is reachable, the stand-in outputs of the stages that cannot be built here) is
prepared beforehand (harness.build.prepare) and passed in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.analysis import dockerfile as dfm
from harness.analysis import environment
from harness.analysis.patched import PatchedDockerfile
from harness.build.baseimage import LocalRustImage
from harness.build.rootfs import DEBIAN_VERSIONS
from harness.build.runtimeimage import DISTROLESS_PREFIX, NONROOT_UID, LocalRuntimeImage
from harness.build.tracer import (
    SOURCE_FILE,
    TRACE_DIR,
    TRACE_DIR_ENV,
    TRACE_STAGE,
    TRACER_CONTEXT,
    TRACER_HOME,
    WRAPPER_PATH,
)
from harness.config.requests import DEFAULT_STAGE, BuildStage
from harness.errors import BadInput
from harness.knobs import (
    BUILDER_STAGE,
    DEBIAN_VERSION_NAME,
    DESCRIBE,
    RUSTC_VERSION,
    SHIPPED_BINARY,
    TARGETARCH,
    Shape,
    run_marker,
)

log = logging.getLogger("harness")

_SYNTAX = re.compile(rb"^#\s*syntax\s*=", re.IGNORECASE)
_CACHE_MOUNT = re.compile(rb"--mount=(type=cache,[^\s\\]*)")
_DEBIAN_RELEASE = re.compile(r"-debian(\d+)[:@]")
DEFAULT_SUITE = "bookworm"
BUILDER_REPOSITORY = "mas-harness/builder"
FINAL_REPOSITORY = "mas-harness/mas"
STAND_IN_STAGES = ("frontend", "policy")
"""The stages the final image takes files from that need a registry or the web to build (node, OPA)."""


@dataclass(frozen=True, kw_only=True)
class BuildPlan:
    ref: str
    dockerfile: bytes
    """The build copy: the patched Dockerfile, byte for byte but for an air-gapped syntax line."""
    parsed: dfm.Dockerfile
    """The patched Dockerfile as parsed: the build copy has its stages, ARGs and COPY lines (what it adds, the
    tracer's stage, comes after the builder stage and is read by nothing here)."""
    shape: Shape
    """The builder shape of the patched Dockerfile."""
    context: Path
    source: str
    """`standin`, `full` or a path."""
    build_args: dict[str, str]
    build_contexts: dict[str, str | Path]
    air_gapped: bool
    deviations: tuple[str, ...]
    image_tag: str
    target: str | None = BUILDER_STAGE
    """The stage buildx builds; None builds the last one."""
    builder: str | None = None
    stage: BuildStage = DEFAULT_STAGE
    traced: bool = False
    """The build copy runs cargo under the harness's rustc wrapper and has the stage TRACE_STAGE holding its records."""


def drop_syntax_line(data: bytes) -> tuple[bytes, str | None]:
    """Without a registry the `# syntax` frontend cannot be pulled; BuildKit's built-in one is used."""
    first, _, rest = data.partition(b"\n")
    if _SYNTAX.match(first):
        return rest, first.decode(errors="replace")
    return data, None


def isolate_cache_mounts(data: bytes, *, namespace: str, targets: Sequence[str] = ("/app/target",)) -> bytes:
    """Give cache mounts of these targets an id of their own, so a build starts with them empty.

    BuildKit keys a cache mount without an `id` by its target path, so every build on one
    engine shares `/app/target` with every other: a concurrent build can take the binary
    from under another's `mv`, and a warm target directory makes a measured build cheap.
    """

    def rename(match: re.Match[bytes]) -> bytes:
        options = match.group(1)
        fields = dict(part.partition(b"=")[::2] for part in options.split(b","))
        target = fields.get(b"target", fields.get(b"dst", fields.get(b"destination", b""))).decode()
        if b"id" in fields or target not in targets:
            return match.group(0)
        return b"--mount=" + options + f",id={namespace}{target}".encode()

    return _CACHE_MOUNT.sub(rename, data)


TRACER_LINES = (
    "# mas-harness: every rustc of this build and every build-script run recorded, inside the build",
    f"COPY --from={TRACER_CONTEXT} {SOURCE_FILE} {TRACER_HOME}/{SOURCE_FILE}",
    f"RUN --network=none cc -O2 -std=gnu11 -o {WRAPPER_PATH} {TRACER_HOME}/{SOURCE_FILE} && mkdir -p {TRACE_DIR}",
    f"ENV RUSTC_WRAPPER={WRAPPER_PATH} {TRACE_DIR_ENV}={TRACE_DIR}",
    "",
)
"""What the build copy gets just before the builder stage's build RUN when the build is traced."""
TRACE_STAGE_LINES = (
    "",
    "# mas-harness: the build trace's raw records alone, taken out with --target and --output type=local",
    f"FROM scratch AS {TRACE_STAGE}",
    f"COPY --from=builder {TRACE_DIR}/ /",
)
"""The stage the build copy gets after the builder stage when the build is traced."""
TRACER_DEVIATIONS = (
    f"trace: the builder stage compiles the harness's rustc wrapper ({SOURCE_FILE}, from the build context "
    f"{TRACER_CONTEXT}) with the image's cc just before the build RUN and sets RUSTC_WRAPPER={WRAPPER_PATH} and "
    f"{TRACE_DIR_ENV}={TRACE_DIR}: every rustc and build-script run is recorded there, in the image's layer; the "
    "binary is built from the same arguments",
    f"trace: stage {TRACE_STAGE} added after the builder stage (FROM scratch, the records only), built a second "
    "time from the layer cache with --output type=local to take the records out",
)


def add_tracer(dockerfile: bytes, parsed: dfm.Dockerfile) -> bytes:
    """The build copy with the rustc wrapper before the builder stage's build RUN, and the records' own stage.

    `parsed` is `dockerfile` as parsed: the build copy keeps the patched file's lines until here.
    The stage goes right after the builder stage, not at the end: the last stage stays the
    image users ship, and a stage nothing depends on is not built unless asked for.
    """
    if any(stage.name and stage.name.lower() == TRACE_STAGE for stage in parsed.stages):
        raise BadInput(f"the Dockerfile already has a stage named {TRACE_STAGE}: it cannot be traced")
    builder = parsed.builder
    build_run = dfm.find_build_run(builder)
    lines = dockerfile.split(b"\n")
    # Line numbers are 1-based; insert the later block first so that the earlier one's number still holds.
    stage_after = builder.instructions[-1].end_line
    lines[stage_after:stage_after] = [line.encode() for line in TRACE_STAGE_LINES]
    # Above the comments that introduce the build RUN, so that they still sit on it.
    above = build_run.start_line - 1
    while above > 0 and lines[above - 1].lstrip().startswith(b"#"):
        above -= 1
    lines[above:above] = [line.encode() for line in TRACER_LINES]
    return b"\n".join(lines)


@dataclass(frozen=True, kw_only=True)
class BaseImageNeed:
    """The upstream Rust base image a Dockerfile builds from, as its ARGs (and the build args) name it."""

    suite: str
    rustc_version: str


def base_image_need(parsed: dfm.Dockerfile, build_args: Mapping[str, str]) -> BaseImageNeed:
    defaults = {a.name: a.default for a in parsed.global_args}
    return BaseImageNeed(
        suite=build_args.get(DEBIAN_VERSION_NAME) or defaults.get(DEBIAN_VERSION_NAME) or DEFAULT_SUITE,
        rustc_version=build_args.get(RUSTC_VERSION) or defaults.get(RUSTC_VERSION) or "",
    )


@dataclass(frozen=True, kw_only=True)
class PlanSource:
    """What a build plan is made from: the ref's patched Dockerfile and build context, the builder it runs on, and,
    air-gapped, the local stand-in for upstream's Rust image."""

    ref: str
    patched: PatchedDockerfile
    context: Path
    source: str
    """`standin`, `full` or a path, as the user gave it."""
    base_image: LocalRustImage | None = None
    builder: str | None = None


def plan_build(
    what: PlanSource,
    build_args: Mapping[str, str],
    *,
    run_id: str,
    cache_namespace: str | None = None,
    tracer: Path | None = None,
) -> BuildPlan:
    """The build of `what.patched_dockerfile`; air-gapped when `what.base_image` (the local stand-in for upstream's)
    is given.

    `run_id` makes this build's VERGEN_GIT_DESCRIBE, the marker its processes carry. With `tracer`
    (the directory holding the rustc wrapper's source) the build is traced.
    """
    ref, context, source = what.ref, what.context, what.source
    patched_dockerfile, parsed = what.patched.data, what.patched.parsed
    base_image, builder = what.base_image, what.builder
    air_gapped = base_image is not None
    args = dict(build_args)
    deviations: list[str] = []
    if cache_namespace:
        isolated = isolate_cache_mounts(patched_dockerfile, namespace=cache_namespace)
        if isolated != patched_dockerfile:
            deviations.append(f"cache mount of /app/target given id {cache_namespace}/app/target: it starts empty")
        patched_dockerfile = isolated
    if DESCRIBE not in args:
        # The layer cache would otherwise serve an unchanged build step without running cargo,
        # leaving nothing to sample; this ARG feeds an ENV just before the build RUN.
        args[DESCRIBE] = run_marker(run_id)
        deviations.append(f"{DESCRIBE} set to a per-run value so the build step runs, not the layer cache")
    contexts: dict[str, str | Path] = {}
    dockerfile = patched_dockerfile
    if tracer is not None:
        # Before the syntax line goes: the parsed lines are the patched file's (isolating a mount keeps them).
        dockerfile = add_tracer(dockerfile, parsed)
        contexts[TRACER_CONTEXT] = tracer
    if base_image is not None:
        dockerfile, dropped = drop_syntax_line(dockerfile)
        if dropped:
            deviations.append(f"air-gapped: dropped the line {dropped!r} (BuildKit's built-in frontend is used)")
        need = base_image_need(parsed, args)
        image, suite, wanted_rustc = base_image, need.suite, need.rustc_version
        contexts.update(image.build_contexts())
        if wanted_rustc != image.rustc_version:
            args[RUSTC_VERSION] = image.rustc_version
            deviations.append(
                f"{RUSTC_VERSION} {wanted_rustc} replaced by the local toolchain {image.rustc_version} "
                f"(base image {image.tag} stands in for docker.io/library/rust:{wanted_rustc}-{suite})"
            )
        else:
            deviations.append(f"base image {image.tag} stands in for {image.upstream_ref}")
    if tracer is not None:
        deviations.extend(TRACER_DEVIATIONS)
    digest = hashlib.sha256(repr((ref, source, sorted(args.items()), tracer is not None)).encode()).hexdigest()[:12]
    return BuildPlan(
        ref=ref,
        dockerfile=dockerfile,
        parsed=parsed,
        shape=what.patched.shape,
        context=context,
        source=source,
        build_args=args,
        build_contexts=contexts,
        air_gapped=air_gapped,
        deviations=tuple(deviations),
        image_tag=f"{BUILDER_REPOSITORY}:{re.sub(r'[^A-Za-z0-9_.-]', '-', ref)}-{digest}",
        builder=builder,
        traced=tracer is not None,
    )


def runtime_bases(parsed: dfm.Dockerfile, build_args: Mapping[str, str]) -> tuple[str, ...]:
    """The distroless images the Dockerfile's stages start from, their ARGs expanded as BuildKit expands them."""
    meta = environment.global_arg_values(parsed, build_args, targetarch=TARGETARCH)
    bases = (environment.expand(stage.base, meta) for stage in parsed.stages)
    return tuple(dict.fromkeys(base for base in bases if base.startswith(DISTROLESS_PREFIX)))


def runtime_suite(parsed: dfm.Dockerfile, build_args: Mapping[str, str]) -> str | None:
    """The Debian suite of the distroless base the final stage runs on (None: it has none)."""
    suites = {version: suite for suite, version in DEBIAN_VERSIONS.items()}
    found = set()
    for base in runtime_bases(parsed, build_args):
        release = _DEBIAN_RELEASE.search(base)
        if release is None or release.group(1) not in suites:
            supported = ", ".join(f"debian{v}" for v in suites)
            raise BadInput(f"no local stand-in for the runtime base {base}: there are stand-ins for {supported}")
        found.add(suites[release.group(1)])
    if len(found) > 1:
        raise BadInput(f"the final stages start from distroless images of several Debian releases: {sorted(found)}")
    return found.pop() if found else None


def plan_final(
    builder: BuildPlan, *, runtime_image: LocalRuntimeImage | None, stage_stand_ins: Path | None
) -> BuildPlan:
    """The build of the Dockerfile's last stage, the image users ship, from the very inputs of `builder`.

    The builder stage comes from the layer cache of `builder`'s build. With `stage_stand_ins`
    the `frontend` and `policy` stages are replaced by those directories; with `runtime_image`
    the distroless bases by that local image.
    """
    parsed = builder.parsed
    named = {stage.name.lower() for stage in parsed.stages if stage.name}
    contexts = dict(builder.build_contexts)
    deviations = list(builder.deviations)
    if stage_stand_ins is not None:
        for name in STAND_IN_STAGES:
            if name in named:
                contexts[name] = stage_stand_ins / name
                deviations.append(f"stage `{name}` not built: replaced by the stand-in (test double) {contexts[name]}")
    if runtime_image is not None:
        for base in runtime_bases(parsed, builder.build_args):
            if not runtime_image.serves(base):
                raise BadInput(f"the local runtime image {runtime_image.tag} cannot stand in for {base}")
            contexts[base] = f"docker-image://{runtime_image.tag}"
            deviations.append(
                f"base image {runtime_image.tag} stands in for {base} (Debian {runtime_image.suite}, "
                f"user {NONROOT_UID}, no shell; unlike distroless it keeps dpkg, apt and coreutils)"
            )
    return dataclasses.replace(
        builder,
        stage="final",
        target=None,
        build_contexts=contexts,
        deviations=tuple(deviations),
        image_tag=builder.image_tag.replace(BUILDER_REPOSITORY, FINAL_REPOSITORY, 1),
    )


def shipped_binary(plan: BuildPlan) -> str:
    """The file of the builder stage that the last stage copies to /usr/local/bin/mas-cli (for TARGETARCH)."""
    parsed = plan.parsed
    last = parsed.stages[-1]
    for copy in last.copies_from:
        if copy.source_stage.lower() == BUILDER_STAGE and copy.dest == SHIPPED_BINARY:
            env = environment.environment_at(parsed, last, copy.line, plan.build_args, targetarch=TARGETARCH)
            return environment.expand(copy.sources[0], env)
    raise dfm.DockerfileError(f"the Dockerfile's last stage copies nothing from the builder stage to {SHIPPED_BINARY}")
