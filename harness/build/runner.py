"""Build the patched upstream Dockerfile for real, sample it, and check the images: the builder stage, and the final.

Planned first, then run: `plan_build()` (and, for the shipped image, `plan_final()`)
resolve the Dockerfile build copy, the build args and contexts, and every deviation from
upstream into a frozen `BuildPlan`; `run_build()` executes it with `docker buildx build`
(through python-on-whales) under the process sampler, showing the compile step's progress;
harness.build.images checks the results where they are; `judge()` and `judge_final()`
turn what was seen into checks.

Where it runs and where its images are checked is the build's `BuildTarget` (harness.build.builders):
the local engine, a docker-driver builder's own engine through its context, or an image loaded or
exported from a BuildKit that keeps images in its cache. The host's process sampler reads only this
machine's process table: for a build anywhere else it samples nothing and says so.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from python_on_whales import DockerException
from rich.console import Console

from harness.build.assemble import BuildFacts
from harness.build.builders import LOCAL_ENGINE, BuildTarget
from harness.build.connect import copy_image, docker_argv, engine_client
from harness.build.docker_engine import prune_cache_mounts
from harness.build.figures import BuildFigures, build_figures
from harness.build.images import (
    FinalFacts,
    ImageAt,
    ImageFacts,
    InArchive,
    InEngine,
    inspect_final_image,
    inspect_image,
)
from harness.build.plan import BuildPlan, PlanSource, plan_build, plan_final, shipped_binary
from harness.build.prepare import STANDIN, BuildInputs
from harness.build.progress import BuildProgress
from harness.build.progress_stream import failure_reason, lock_package_count
from harness.build.runtimeimage import NONROOT_UID
from harness.build.sampler import ProcessSampler, SamplerReport, UnseenBuild
from harness.build.trace import TraceSource
from harness.build.tracer import SOURCE_CONTEXT
from harness.build.tracing import TraceOutcome, collect_trace
from harness.config.requests import DEFAULT_STAGE, BuildStage
from harness.files import atomic_write, write_json
from harness.knobs import (
    ARCH_TRIPLES,
    CODEGEN_UNITS,
    DESCRIBE,
    JOBS,
    LTO,
    SAMPLE_INTERVAL,
    SHIPPED_BINARY,
    TARGETARCH,
    binary_name,
    expected_binaries,
    is_run_marker,
    requested_targets,
)

log = logging.getLogger("harness")

_TAIL = 40
DOCKERFILE_COPY = "Dockerfile.build"
"""The build copy, as built, in the report directory."""


@dataclass(frozen=True, kw_only=True)
class BuildOutcome:
    succeeded: bool
    log_path: Path
    sampler: SamplerReport
    error: str | None = None
    log_tail: tuple[str, ...] = field(default_factory=tuple)
    image: ImageAt | None = None
    """Where the built image is, for its checks; None when the build failed."""


def unseen_reason(target: BuildTarget) -> str:
    return (
        f"the build ran on {target.describe()}, whose processes are not in this machine's process table: the "
        "host sampler saw nothing of it"
    )


def exported_archive(plan: BuildPlan, target: BuildTarget, report_dir: Path) -> Path | None:
    fmt = target.images.export_format
    return report_dir / f"{plan.stage}-image.{fmt}.tar" if fmt else None


def run_build(
    plan: BuildPlan,
    *,
    report_dir: Path,
    target: BuildTarget = LOCAL_ENGINE,
    console: Console | None = None,
    sample_interval: float = SAMPLE_INTERVAL,
) -> BuildOutcome:
    """Run the build, streaming its log to a file and the compile step's progress to `console`, sampled throughout."""
    report_dir.mkdir(parents=True, exist_ok=True)
    dockerfile_path = report_dir / DOCKERFILE_COPY
    atomic_write(dockerfile_path, plan.dockerfile)
    log_path = report_dir / "build.log"
    console = console or Console(stderr=True)
    log.info("building %s (%s stage) with %s", plan.ref, plan.stage, plan.build_args)
    error: str | None = None
    tail: list[str] = []
    # The build RUN's processes inherit this per-run value through the Dockerfile's ENV.
    describe = plan.build_args.get(DESCRIBE, "")
    marker = (DESCRIBE, describe) if is_run_marker(describe) else None
    lock = plan.context / "Cargo.lock"
    total = lock_package_count(lock.read_text(errors="replace")) if lock.is_file() else None
    archive = exported_archive(plan, target, report_dir)
    output = {"type": target.images.export_format or "", "dest": str(archive)} if archive else {}
    sampler: ProcessSampler | UnseenBuild = (
        ProcessSampler(source_root="/app", interval=sample_interval, environ_marker=marker)
        if target.processes_visible
        else UnseenBuild(unseen_reason(target), interval=sample_interval)
    )
    with (
        log_path.open("w", encoding="utf-8") as log_file,
        sampler,
        BuildProgress(
            console,
            title=f"{plan.ref} {plan.stage}",
            total_crates=total,
            sampler=sampler,
            quiet=not log.isEnabledFor(logging.INFO),
        ) as progress,
    ):
        try:
            stream = engine_client(target.context).buildx.build(
                plan.context,
                file=dockerfile_path,
                target=plan.target,
                build_args=plan.build_args,
                build_contexts=plan.build_contexts,
                tags=[plan.image_tag],
                load=target.load,
                output=output,
                progress="plain",
                provenance=False,
                builder=target.builder_arg,
                stream_logs=True,
            )
            for line in stream:  # type: ignore[union-attr]  # stream_logs=True gives an iterator
                log_file.write(line if line.endswith("\n") else line + "\n")
                tail = [*tail[-(_TAIL - 1) :], line.rstrip("\n")]
                progress.feed(line)
        except DockerException as exc:
            reason = failure_reason(tail)
            error = f"docker buildx build failed (exit {exc.return_code})" + (f": {reason}" if reason else "")
            log_file.write(f"\n# {error}\n")
    report = sampler.report()
    write_json(report_dir / "sampler.json", report.as_json())
    image = None
    if error is None:
        image = _image_at(plan, target, archive)
    elif archive is not None and archive.exists():
        archive.unlink()  # buildx makes the file before it knows the build fails
    return BuildOutcome(
        succeeded=error is None, log_path=log_path, sampler=report, error=error, log_tail=tuple(tail), image=image
    )


def _image_at(plan: BuildPlan, target: BuildTarget, archive: Path | None) -> ImageAt:
    if archive is not None:
        return InArchive(path=archive, tag=plan.image_tag)
    if target.images.copy_from:
        copy_image(plan.image_tag, from_context=target.images.copy_from)
    return InEngine(client=engine_client(target.images.context), tag=plan.image_tag)


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    ok: bool
    detail: str
    skipped: bool = False
    """Not run (what it checks is not there to check); `ok` stays True so that it fails nothing."""


@dataclass(frozen=True, kw_only=True)
class FinalReport:
    """The final stage's build and image, beside the builder stage's report."""

    facts: FinalFacts | None
    log: str

    def as_json(self) -> dict[str, object]:
        return {"log": self.log, **(self.facts.as_json() if self.facts else {})}


@dataclass(frozen=True, kw_only=True)
class BuildReport:
    ref: str
    source: str
    image: str | None
    build_args: dict[str, str]
    air_gapped: bool
    deviations: tuple[str, ...]
    binaries: tuple[str, ...]
    version_output: str | None
    build_info: dict[str, object] | None
    sampler: SamplerReport
    log: str
    checks: tuple[Check, ...]
    binary_size_bytes: int | None = None
    stage: BuildStage = DEFAULT_STAGE
    final: FinalReport | None = None
    target: BuildTarget = LOCAL_ENGINE
    archives: tuple[Path, ...] = ()
    """The images exported into the report directory (`--export`)."""
    figures: BuildFigures | None = None
    """Memory and time from every source that saw the build (None: a report read back, with the sampler's only)."""
    trace: TraceOutcome | None = None
    """The in-build trace, when the build was traced."""

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def as_json(self) -> dict[str, object]:
        return {
            "ref": self.ref,
            "source": self.source,
            "stage": self.stage,
            "image": self.image,
            "ok": self.ok,
            "build_args": self.build_args,
            "air_gapped": self.air_gapped,
            "deviations": list(self.deviations),
            "binaries": list(self.binaries),
            "binary_size_bytes": self.binary_size_bytes,
            "version_output": self.version_output,
            "build_info": self.build_info,
            "builder": self.target.as_json(),
            "images": {**self.target.images.as_json(), "archives": [str(path) for path in self.archives]},
            "sampler": self.sampler.as_json(with_samples=False),
            "figures": self.figures.as_json() if self.figures else None,
            "log": self.log,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "skipped": c.skipped} for c in self.checks],
            "final": self.final.as_json() if self.final else None,
            "trace": self.trace.as_json() if self.trace else None,
        }


def run_binary(plan: BuildPlan) -> str:
    """The binary of the builder's image that runs here: the TARGETARCH one (the other architecture's cannot)."""
    return binary_name(plan.shape, ARCH_TRIPLES[TARGETARCH])


def judge(
    plan: BuildPlan,
    outcome: BuildOutcome,
    facts: ImageFacts | None,
    *,
    standin: bool,
    figures: BuildFigures | None = None,
) -> tuple[Check, ...]:
    """The builder stage's checks: it built, it moved exactly the binaries asked for, and the one that runs here
    says what it was built with."""
    checks = [Check(name="build", ok=outcome.succeeded, detail=outcome.error or "docker buildx build succeeded")]
    if facts is None:
        return tuple(checks)
    targets = requested_targets(plan.build_args)
    expected = expected_binaries(targets, shape=plan.shape)
    checks.append(
        Check(
            name="binaries",
            ok=facts.binaries == expected,
            detail=f"/usr/local/bin/mas-cli*: {list(facts.binaries)}, expected {list(expected)}",
        )
    )
    jobs = plan.build_args.get(JOBS)
    if jobs == "1":
        checks.append(_one_rustc_check(outcome, figures))
    if facts.not_run:
        checks += _unrun_version_checks(plan, facts.not_run, facts.marker_in_binary, prefix="")
        return tuple(checks)
    if facts.version_exit is None:
        reason = f"not run: no {run_binary(plan)} (TARGETARCH {TARGETARCH}); {list(facts.binaries)} do not run here"
        checks.append(Check(name="version", ok=True, skipped=True, detail=reason))
        return tuple(checks)
    checks.append(_version_check(plan, facts))
    if standin:
        checks += _build_info_checks(plan, facts.build_info or {})
    return tuple(checks)


def _one_rustc_check(outcome: BuildOutcome, figures: BuildFigures | None) -> Check:
    """CARGO_BUILD_JOBS=1: one rustc at a time, as the trace recorded it (every unit), else as the sampler saw it."""
    trace = figures.trace if figures else None
    if trace is not None:
        most = trace.max_concurrent_rustc
        return Check(
            name="one-rustc-at-a-time", ok=most <= 1, detail=f"at most {most} rustc ran at once (in-build trace)"
        )
    if not outcome.sampler.available:
        return Check(
            name="one-rustc-at-a-time", ok=True, skipped=True, detail=f"not seen: {outcome.sampler.unavailable}"
        )
    most = outcome.sampler.max_concurrent_rustc
    return Check(
        name="one-rustc-at-a-time", ok=most <= 1, detail=f"at most {most} rustc of the source tree ran at once"
    )


def _unrun_version_checks(plan: BuildPlan, not_run: str, marker_found: bool | None, *, prefix: str) -> list[Check]:
    """Where the binary cannot be run (an exported image), its bytes must at least carry this build's marker."""
    describe = plan.build_args.get(DESCRIBE, "")
    return [
        Check(name=f"{prefix}version", ok=True, skipped=True, detail=not_run),
        Check(
            name=f"{prefix}marker",
            ok=bool(marker_found),
            detail=f"this build's {DESCRIBE} {describe!r} "
            + ("occurs in the binary's bytes" if marker_found else "does not occur in the binary: an earlier build's"),
        ),
    ]


def _version_check(plan: BuildPlan, facts: ImageFacts) -> Check:
    """It runs, and it is this build's binary: MAS's --version is the VERGEN_GIT_DESCRIBE it was built with."""
    detail = f"--version exit {facts.version_exit}: {facts.version_output!r}"
    describe = plan.build_args.get(DESCRIBE)
    if facts.version_exit != 0 or not describe or describe in (facts.version_output or ""):
        return Check(name="version", ok=facts.version_exit == 0, detail=detail)
    return Check(
        name="version",
        ok=False,
        detail=f"{detail}, not this build's {describe}: the binary is an earlier build's (cargo found it fresh "
        "in a reused /app/target), so it shows nothing of this build's knobs",
    )


def _build_info_checks(plan: BuildPlan, info: Mapping[str, object]) -> list[Check]:
    """What the stand-in's build script recorded against what the build was asked for."""
    env = info.get("env")
    env = env if isinstance(env, dict) else {}
    wanted: list[tuple[str, object, object]] = [
        ("target", info.get("target"), ARCH_TRIPLES[TARGETARCH]),
        ("profile", info.get("profile"), "release"),
    ]
    jobs = plan.build_args.get(JOBS)
    if jobs:
        wanted.append(("num_jobs", info.get("num_jobs"), int(jobs)))
    for knob in (LTO, CODEGEN_UNITS):
        if knob in plan.build_args:
            wanted.append((knob, env.get(knob), plan.build_args[knob]))
    return [
        Check(name=f"build-info {name}", ok=seen == want, detail=f"{seen!r}, asked {want!r}")
        for name, seen, want in wanted
    ]


def judge_final(
    plan: BuildPlan,
    outcome: BuildOutcome,
    facts: FinalFacts | None,
    *,
    builder: ImageFacts | None,
    standin: bool,
) -> tuple[Check, ...]:
    """The final stage's checks: it built, it ships the very binary the builder moved, and that binary runs as the
    image's entrypoint and user."""
    shipped = shipped_binary(plan)
    build = Check(name="final build", ok=outcome.succeeded, detail=outcome.error or "docker buildx build succeeded")
    if not outcome.succeeded and outcome.error and f"{shipped} not found" in outcome.error:
        moved = list(builder.binaries) if builder else []
        build = Check(
            name="final build",
            ok=False,
            detail=f"the final stage copies {shipped} from the builder stage, which has no such file (it moved "
            f"{moved}; MAS_BUILD_TARGETS={plan.build_args.get('MAS_BUILD_TARGETS', '')!r}, TARGETARCH "
            f"{TARGETARCH}): name the TARGETARCH target in MAS_BUILD_TARGETS, or leave it empty",
        )
    if facts is None:
        return (build,)
    builder_sha = builder.shipped_sha256 if builder else None
    uid = (facts.user or "").split(":")[0]
    checks = [
        build,
        Check(
            name="final binary",
            ok=facts.binary_sha256 is not None and facts.binary_sha256 == builder_sha,
            detail=f"{SHIPPED_BINARY} sha256 {facts.binary_sha256}, the builder's {shipped} {builder_sha}",
        ),
        Check(
            name="final entrypoint and user",
            ok=facts.entrypoint == (SHIPPED_BINARY,) and uid == str(NONROOT_UID),
            detail=f"entrypoint {list(facts.entrypoint)}, user {facts.user!r}, expected [{SHIPPED_BINARY!r}] and "
            f"{NONROOT_UID} (distroless nonroot)",
        ),
    ]
    if facts.not_run:
        return (*checks, *_unrun_version_checks(plan, facts.not_run, facts.marker_in_binary, prefix="final "))
    checks.append(
        Check(
            name="final version",
            ok=facts.version_exit == 0 and (builder is None or facts.version_output == builder.version_output),
            detail=f"entrypoint --version exit {facts.version_exit}: {facts.version_output!r}",
        )
    )
    if standin:
        checks.append(
            Check(
                name="final build-info",
                ok=facts.build_info is not None and facts.build_info == (builder.build_info if builder else None),
                detail="entrypoint build-info: "
                + ("the builder's binary's, as built" if facts.build_info else "no JSON")
                + ("" if builder is None or facts.build_info == builder.build_info else f": {facts.build_info!r}"),
            )
        )
    return tuple(checks)


def trace_check(trace: TraceOutcome) -> Check:
    """A traced build must leave its trace, with every unit's dependencies placed."""
    if trace.error is not None:
        return Check(name="trace", ok=False, detail=f"no trace: {trace.error}")
    detail = f"{trace.file}: {trace.figures.get('units') if trace.figures else 0} units"
    if trace.problems:
        return Check(name="trace", ok=False, detail=f"{detail}; " + "; ".join(trace.problems))
    return Check(name="trace", ok=True, detail=detail)


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """How one build of prepared inputs is run and where its report goes."""

    report_dir: Path
    sample_interval: float = SAMPLE_INTERVAL
    trace: bool = False
    """Run cargo under the harness's rustc wrapper: trace.json lands in `report_dir`."""
    keep_target_cache: bool = False


def build_and_check(
    plan: BuildPlan,
    *,
    inputs: BuildInputs,
    options: BuildOptions,
    final_plan: BuildPlan | None = None,
    console: Console | None = None,
) -> BuildReport:
    """The builder stage, built and checked where its image is; with `final_plan`, then the final stage from the same
    layers.

    A traced plan's records are exported right after its build, from the builder it ran on, while the layer cache
    surely holds them.
    """
    report_dir, target, standin, sample_interval = (
        options.report_dir,
        inputs.target,
        inputs.standin,
        options.sample_interval,
    )
    outcome = run_build(plan, report_dir=report_dir, target=target, console=console, sample_interval=sample_interval)
    marker = plan.build_args.get(DESCRIBE, "")
    outcomes = [outcome]
    trace = None
    if plan.traced:
        trace_facts = BuildFacts(
            ref=inputs.ref,
            upstream_commit=inputs.upstream_commit,
            source=trace_source(inputs.source),
            build_args=plan.build_args,
        )
        trace = (
            collect_trace(
                plan, facts=trace_facts, dockerfile=report_dir / DOCKERFILE_COPY, report_dir=report_dir, target=target
            )
            if outcome.succeeded
            else TraceOutcome(file=None, records_file=None, error="the build failed")
        )
    facts = None
    if outcome.image is not None:
        shipped = shipped_binary(plan) if final_plan is not None else None
        facts = inspect_image(
            outcome.image, binary=run_binary(plan), shipped=shipped, want_build_info=standin, marker=marker
        )
    figures = build_figures(outcome.sampler, trace)
    checks = judge(plan, outcome, facts, standin=standin, figures=figures)
    if trace is not None:
        checks += (trace_check(trace),)
    final = None
    if final_plan is not None and outcome.succeeded:
        final_dir = report_dir / "final"
        final_outcome = run_build(
            final_plan, report_dir=final_dir, target=target, console=console, sample_interval=sample_interval
        )
        final_facts = (
            inspect_final_image(final_outcome.image, want_build_info=standin, marker=marker)
            if final_outcome.image is not None
            else None
        )
        checks += judge_final(final_plan, final_outcome, final_facts, builder=facts, standin=standin)
        final = FinalReport(facts=final_facts, log=str(final_outcome.log_path))
        outcomes.append(final_outcome)
    report = BuildReport(
        ref=plan.ref,
        source=plan.source,
        image=plan.image_tag if outcome.succeeded else None,
        build_args=plan.build_args,
        air_gapped=plan.air_gapped,
        # The final plan's are the builder's and what the final stage adds.
        deviations=final_plan.deviations if final_plan is not None else plan.deviations,
        binaries=facts.binaries if facts else (),
        version_output=facts.version_output if facts else None,
        build_info=facts.build_info if facts else None,
        binary_size_bytes=facts.binary_size_bytes if facts else None,
        sampler=outcome.sampler,
        log=str(outcome.log_path),
        checks=checks,
        stage=final_plan.stage if final_plan is not None else plan.stage,
        final=final,
        target=target,
        figures=figures,
        archives=tuple(done.image.path for done in outcomes if isinstance(done.image, InArchive)),
        trace=trace,
    )
    write_json(report_dir / "report.json", report.as_json())
    return report


def trace_source(source: str) -> TraceSource:
    """What a trace says its source was: the stand-in, a full checkout of the ref, or a tree the user named."""
    if source == STANDIN:
        return "standin"
    return "full" if source == "full" else "path"


def build_ref(
    inputs: BuildInputs, build_args: Mapping[str, str], options: BuildOptions, *, console: Console | None = None
) -> BuildReport:
    """Plan the build of the prepared ref with these build args, run it sampled, and check the image(s).

    The build's `/app/target` cache mount is its own and starts empty, so cargo compiles what is
    checked: upstream's shared one would hand a rerun an earlier build's binary (and a concurrent
    build could move it away). It is dropped afterwards unless `options.keep_target_cache`.
    """
    run_id = uuid.uuid4().hex[:12]
    namespace = f"mas-harness-build-{run_id}"
    plan = plan_build(
        PlanSource(
            ref=inputs.ref,
            patched=inputs.patched,
            context=inputs.context,
            source=inputs.source,
            base_image=inputs.base_image,
            builder=inputs.target.name,
        ),
        build_args,
        run_id=run_id,
        cache_namespace=namespace,
        tracer=SOURCE_CONTEXT if options.trace else None,
    )
    final_plan = (
        plan_final(plan, runtime_image=inputs.runtime_image, stage_stand_ins=inputs.stage_stand_ins)
        if inputs.stage == "final"
        else None
    )
    try:
        return build_and_check(plan, inputs=inputs, options=options, final_plan=final_plan, console=console)
    finally:
        if not options.keep_target_cache:
            # A full-source target directory is several GB, and nothing else uses this one; on the builder it ran on.
            target = inputs.target
            prune_cache_mounts(namespace, builder=target.builder_arg, docker_argv=docker_argv(target))
