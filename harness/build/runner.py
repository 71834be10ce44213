"""Build the patched upstream Dockerfile for real, sample it, and check the images: the builder stage, and the final.

Planned first, then run: `plan_build()` (and, for the shipped image, `plan_final()`)
resolve the Dockerfile build copy, the build args and contexts, and every deviation from
upstream into a frozen `BuildPlan`; `run_build()` executes it with `docker buildx build`
(through python-on-whales) under the process sampler, showing the compile step's progress;
harness.build.images runs the results with testcontainers; `judge()` and `judge_final()`
turn what was seen into checks.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from python_on_whales import DockerException, docker
from rich.console import Console

from harness.build.assemble import BuildFacts
from harness.build.docker_engine import prune_cache_mounts
from harness.build.images import FinalFacts, ImageFacts, inspect_final_image, inspect_image
from harness.build.plan import BuildPlan, BuildStage, plan_build, plan_final, plan_shape, shipped_binary
from harness.build.prepare import STANDIN, BuildInputs
from harness.build.progress import BuildProgress
from harness.build.progress_stream import failure_reason, lock_package_count
from harness.build.runtimeimage import NONROOT_UID
from harness.build.sampler import ProcessSampler, SamplerReport
from harness.build.trace import TraceSource
from harness.build.tracer import SOURCE_CONTEXT
from harness.build.tracing import TraceOutcome, collect_trace
from harness.knobs import ARCH_TRIPLES, SHIPPED_BINARY, TARGETARCH, binary_name, expected_binaries, requested_targets

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


def run_build(
    plan: BuildPlan, *, report_dir: Path, console: Console | None = None, sample_interval: float = 0.25
) -> BuildOutcome:
    """Run the build, streaming its log to a file and the compile step's progress to `console`, sampled throughout."""
    report_dir.mkdir(parents=True, exist_ok=True)
    dockerfile_path = report_dir / DOCKERFILE_COPY
    dockerfile_path.write_bytes(plan.dockerfile)
    log_path = report_dir / "build.log"
    console = console or Console(stderr=True)
    log.info("building %s (%s stage) with %s", plan.ref, plan.stage, plan.build_args)
    error: str | None = None
    tail: list[str] = []
    # The build RUN's processes inherit this per-run value through the Dockerfile's ENV.
    describe = plan.build_args.get("VERGEN_GIT_DESCRIBE", "")
    marker = ("VERGEN_GIT_DESCRIBE", describe) if describe.startswith("mas-harness-") else None
    lock = plan.context / "Cargo.lock"
    total = lock_package_count(lock.read_text(errors="replace")) if lock.is_file() else None
    with (
        log_path.open("w", encoding="utf-8") as log_file,
        ProcessSampler(source_root="/app", interval=sample_interval, environ_marker=marker) as sampler,
        BuildProgress(
            console,
            title=f"{plan.ref} {plan.stage}",
            total_crates=total,
            sampler=sampler,
            quiet=not log.isEnabledFor(logging.INFO),
        ) as progress,
    ):
        try:
            stream = docker.buildx.build(
                plan.context,
                file=dockerfile_path,
                target=plan.target,
                build_args=plan.build_args,
                build_contexts=plan.build_contexts,
                tags=[plan.image_tag],
                load=True,
                progress="plain",
                provenance=False,
                builder=plan.builder,
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
    (report_dir / "sampler.json").write_text(json.dumps(report.as_json(), indent=2) + "\n")
    return BuildOutcome(succeeded=error is None, log_path=log_path, sampler=report, error=error, log_tail=tuple(tail))


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
    stage: BuildStage = "builder"
    final: FinalReport | None = None
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
            "sampler": self.sampler.as_json(with_samples=False),
            "log": self.log,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "skipped": c.skipped} for c in self.checks],
            "final": self.final.as_json() if self.final else None,
            "trace": self.trace.as_json() if self.trace else None,
        }


def run_binary(plan: BuildPlan) -> str:
    """The binary of the builder's image that runs here: the TARGETARCH one (the other architecture's cannot)."""
    return binary_name(plan_shape(plan), ARCH_TRIPLES[TARGETARCH])


def judge(plan: BuildPlan, outcome: BuildOutcome, facts: ImageFacts | None, *, standin: bool) -> tuple[Check, ...]:
    """The builder stage's checks: it built, it moved exactly the binaries asked for, and the one that runs here
    says what it was built with."""
    checks = [Check(name="build", ok=outcome.succeeded, detail=outcome.error or "docker buildx build succeeded")]
    if facts is None:
        return tuple(checks)
    targets = requested_targets(plan.build_args)
    expected = expected_binaries(targets, shape=plan_shape(plan))
    checks.append(
        Check(
            name="binaries",
            ok=facts.binaries == expected,
            detail=f"/usr/local/bin/mas-cli*: {list(facts.binaries)}, expected {list(expected)}",
        )
    )
    jobs = plan.build_args.get("CARGO_BUILD_JOBS")
    if jobs == "1":
        most = outcome.sampler.max_concurrent_rustc
        checks.append(
            Check(
                name="one-rustc-at-a-time", ok=most <= 1, detail=f"at most {most} rustc of the source tree ran at once"
            )
        )
    if facts.version_exit is None:
        reason = f"not run: no {run_binary(plan)} (TARGETARCH {TARGETARCH}); {list(facts.binaries)} do not run here"
        checks.append(Check(name="version", ok=True, skipped=True, detail=reason))
        return tuple(checks)
    checks.append(_version_check(plan, facts))
    if standin:
        checks += _build_info_checks(plan, facts.build_info or {})
    return tuple(checks)


def _version_check(plan: BuildPlan, facts: ImageFacts) -> Check:
    """It runs, and it is this build's binary: MAS's --version is the VERGEN_GIT_DESCRIBE it was built with."""
    detail = f"--version exit {facts.version_exit}: {facts.version_output!r}"
    describe = plan.build_args.get("VERGEN_GIT_DESCRIBE")
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
    jobs = plan.build_args.get("CARGO_BUILD_JOBS")
    if jobs:
        wanted.append(("num_jobs", info.get("num_jobs"), int(jobs)))
    for knob in ("CARGO_PROFILE_RELEASE_LTO", "CARGO_PROFILE_RELEASE_CODEGEN_UNITS"):
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
        Check(
            name="final version",
            ok=facts.version_exit == 0 and (builder is None or facts.version_output == builder.version_output),
            detail=f"entrypoint --version exit {facts.version_exit}: {facts.version_output!r}",
        ),
    ]
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


def build_and_check(  # noqa: PLR0913  # each an independent choice; keyword-only
    plan: BuildPlan,
    *,
    report_dir: Path,
    standin: bool,
    final_plan: BuildPlan | None = None,
    console: Console | None = None,
    sample_interval: float = 0.25,
    trace_facts: BuildFacts | None = None,
) -> BuildReport:
    """The builder stage, built and checked; with `final_plan`, then the final stage from the same layers.

    A traced plan's records are exported right after its build, while the layer cache surely holds them.
    """
    outcome = run_build(plan, report_dir=report_dir, console=console, sample_interval=sample_interval)
    trace = None
    if plan.traced and trace_facts is not None:
        trace = (
            collect_trace(plan, facts=trace_facts, dockerfile=report_dir / DOCKERFILE_COPY, report_dir=report_dir)
            if outcome.succeeded
            else TraceOutcome(file=None, records_file=None, error="the build failed")
        )
    facts = None
    if outcome.succeeded:
        shipped = shipped_binary(plan) if final_plan is not None else None
        facts = inspect_image(plan.image_tag, binary=run_binary(plan), shipped=shipped, want_build_info=standin)
    checks = judge(plan, outcome, facts, standin=standin)
    if trace is not None:
        checks += (trace_check(trace),)
    final = None
    if final_plan is not None and outcome.succeeded:
        final_dir = report_dir / "final"
        final_outcome = run_build(final_plan, report_dir=final_dir, console=console, sample_interval=sample_interval)
        final_facts = (
            inspect_final_image(final_plan.image_tag, want_build_info=standin) if final_outcome.succeeded else None
        )
        checks += judge_final(final_plan, final_outcome, final_facts, builder=facts, standin=standin)
        final = FinalReport(facts=final_facts, log=str(final_outcome.log_path))
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
        trace=trace,
    )
    (report_dir / "report.json").write_text(json.dumps(report.as_json(), indent=2) + "\n")
    return report


def trace_source(source: str) -> TraceSource:
    """What a trace says its source was: the stand-in, a full checkout of the ref, or a tree the user named."""
    if source == STANDIN:
        return "standin"
    return "full" if source == "full" else "path"


def build_ref(  # noqa: PLR0913  # each an independent choice of the user; keyword-only
    inputs: BuildInputs,
    *,
    build_args: Mapping[str, str],
    report_dir: Path,
    builder: str | None = None,
    keep_target_cache: bool = False,
    console: Console | None = None,
    sample_interval: float = 0.25,
    trace: bool = False,
) -> BuildReport:
    """Plan the build of the prepared ref with these build args, run it sampled, and check the image(s).

    With `trace`, cargo runs under the harness's rustc wrapper and trace.json lands in `report_dir`.

    The build's `/app/target` cache mount is its own and starts empty, so cargo compiles what is
    checked: upstream's shared one would hand a rerun an earlier build's binary (and a concurrent
    build could move it away). It is dropped afterwards unless `keep_target_cache`.
    """
    run_id = uuid.uuid4().hex[:12]
    namespace = f"mas-harness-build-{run_id}"
    plan = plan_build(
        ref=inputs.ref,
        patched_dockerfile=inputs.patched_dockerfile,
        context=inputs.context,
        source=inputs.source,
        build_args=build_args,
        run_id=run_id,
        base_image=inputs.base_image,
        builder=builder,
        cache_namespace=namespace,
        tracer=SOURCE_CONTEXT if trace else None,
    )
    final_plan = (
        plan_final(plan, runtime_image=inputs.runtime_image, stage_stand_ins=inputs.stage_stand_ins)
        if inputs.stage == "final"
        else None
    )
    try:
        return build_and_check(
            plan,
            report_dir=report_dir,
            standin=inputs.standin,
            final_plan=final_plan,
            console=console,
            sample_interval=sample_interval,
            trace_facts=BuildFacts(
                ref=inputs.ref,
                upstream_commit=inputs.upstream_commit,
                source=trace_source(inputs.source),
                build_args=plan.build_args,
            )
            if trace
            else None,
        )
    finally:
        if not keep_target_cache:
            # A full-source target directory is several GB, and nothing else uses this one.
            prune_cache_mounts(namespace, builder=builder)
