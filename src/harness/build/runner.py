"""Build the patched upstream Dockerfile's builder stage for real, sample it, and check the image.

Planned first, then run: `plan_build()` resolves the Dockerfile build copy, the
build args and contexts, and every deviation from upstream into a frozen
`BuildPlan`; `run_build()` executes it with `docker buildx build` (through
python-on-whales) under the process sampler; `inspect_image()` runs the result
with testcontainers.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from python_on_whales import DockerException, docker
from rich.console import Console
from rich.live import Live
from rich.text import Text

from harness.build.plan import BuildPlan, plan_build, plan_shape
from harness.build.sampler import ProcessSampler, SamplerReport
from harness.build.setup import BuildInputs
from harness.knobs import expected_binaries, requested_targets

log = logging.getLogger("harness")


@dataclass(frozen=True, kw_only=True)
class BuildOutcome:
    succeeded: bool
    log_path: Path
    sampler: SamplerReport
    error: str | None = None
    log_tail: tuple[str, ...] = field(default_factory=tuple)


@contextmanager
def _progress(console: Console, title: str) -> Iterator[Live]:
    with Live(Text(title), console=console, refresh_per_second=4, transient=True) as live:
        yield live


def run_build(
    plan: BuildPlan, *, report_dir: Path, console: Console | None = None, sample_interval: float = 0.25
) -> BuildOutcome:
    """Run the build, streaming its log to a file and a one-line live display, sampled throughout."""
    report_dir.mkdir(parents=True, exist_ok=True)
    dockerfile_path = report_dir / "Dockerfile.build"
    dockerfile_path.write_bytes(plan.dockerfile)
    log_path = report_dir / "build.log"
    console = console or Console(stderr=True)
    log.info("building %s (target %s) with %s", plan.ref, plan.target, plan.build_args)
    error: str | None = None
    tail: list[str] = []
    # The build RUN's processes inherit this per-run value through the Dockerfile's ENV.
    describe = plan.build_args.get("VERGEN_GIT_DESCRIBE", "")
    marker = ("VERGEN_GIT_DESCRIBE", describe) if describe.startswith("mas-harness-") else None
    with (
        log_path.open("w", encoding="utf-8") as log_file,
        ProcessSampler(source_root="/app", interval=sample_interval, environ_marker=marker) as sampler,
        _progress(console, f"building {plan.ref}") as live,
    ):
        started = time.monotonic()
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
                tail = [*tail[-39:], line.rstrip("\n")]
                live.update(Text(f"[{time.monotonic() - started:6.0f}s] {line.strip()[:150]}"))
        except DockerException as exc:
            error = f"docker buildx build failed (exit {exc.return_code})"
            log_file.write(f"\n# {error}\n")
    report = sampler.report()
    (report_dir / "sampler.json").write_text(json.dumps(report.as_json(), indent=2) + "\n")
    return BuildOutcome(succeeded=error is None, log_path=log_path, sampler=report, error=error, log_tail=tuple(tail))


# -- image checks --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ImageFacts:
    binaries: tuple[str, ...]
    version_output: str | None
    version_exit: int | None
    build_info: dict[str, object] | None
    binary_size_bytes: int | None = None


def inspect_image(tag: str, *, binary: str, want_build_info: bool) -> ImageFacts:
    """Run the built builder image with testcontainers and read what it holds."""
    from testcontainers.core.config import testcontainers_config  # noqa: PLC0415  # only builds need it
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415

    # Ryuk, testcontainers' reaper, is an image to pull, which an air-gapped engine cannot; the
    # context manager removes the container itself.
    testcontainers_config.ryuk_disabled = True

    with DockerContainer(tag).with_command("sleep infinity") as container:
        listing = container.exec(["sh", "-c", "ls -1 /usr/local/bin"])
        names = listing.output.decode().split()
        binaries = tuple(sorted(name for name in names if name.startswith("mas-cli")))
        version_output = version_exit = None
        build_info = None
        size = None
        if binary in binaries:
            stat = container.exec(["stat", "-c", "%s", f"/usr/local/bin/{binary}"])
            size = int(stat.output.decode().strip()) if stat.exit_code == 0 else None
            version = container.exec([f"/usr/local/bin/{binary}", "--version"])
            version_output, version_exit = version.output.decode().strip(), version.exit_code
            if want_build_info:
                info = container.exec([f"/usr/local/bin/{binary}", "build-info"])
                if info.exit_code == 0:
                    build_info = json.loads(info.output.decode())
    return ImageFacts(
        binaries=binaries,
        version_output=version_output,
        version_exit=version_exit,
        build_info=build_info,
        binary_size_bytes=size,
    )


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    ok: bool
    detail: str


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

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def as_json(self) -> dict[str, object]:
        return {
            "ref": self.ref,
            "source": self.source,
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
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


def judge(plan: BuildPlan, outcome: BuildOutcome, facts: ImageFacts | None, *, standin: bool) -> tuple[Check, ...]:
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
    checks.append(
        Check(
            name="version",
            ok=facts.version_exit == 0,
            detail=f"--version exit {facts.version_exit}: {facts.version_output!r}",
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
    if standin:
        info = facts.build_info or {}
        env = info.get("env") if isinstance(info.get("env"), dict) else {}
        assert isinstance(env, dict)
        wanted: list[tuple[str, object, object]] = [
            ("target", info.get("target"), targets[0]),
            ("profile", info.get("profile"), "release"),
        ]
        if jobs:
            wanted.append(("num_jobs", info.get("num_jobs"), int(jobs)))
        for knob in ("CARGO_PROFILE_RELEASE_LTO", "CARGO_PROFILE_RELEASE_CODEGEN_UNITS"):
            if knob in plan.build_args:
                wanted.append((knob, env.get(knob), plan.build_args[knob]))
        for name, seen, want in wanted:
            checks.append(Check(name=f"build-info {name}", ok=seen == want, detail=f"{seen!r}, asked {want!r}"))
    return tuple(checks)


def build_and_check(
    plan: BuildPlan,
    *,
    report_dir: Path,
    standin: bool,
    console: Console | None = None,
    sample_interval: float = 0.25,
) -> BuildReport:
    outcome = run_build(plan, report_dir=report_dir, console=console, sample_interval=sample_interval)
    facts = None
    if outcome.succeeded:
        binary = expected_binaries(requested_targets(plan.build_args), shape=plan_shape(plan))[0]
        facts = inspect_image(plan.image_tag, binary=binary, want_build_info=standin)
    report = BuildReport(
        ref=plan.ref,
        source=plan.source,
        image=plan.image_tag if outcome.succeeded else None,
        build_args=plan.build_args,
        air_gapped=plan.air_gapped,
        deviations=plan.deviations,
        binaries=facts.binaries if facts else (),
        version_output=facts.version_output if facts else None,
        build_info=facts.build_info if facts else None,
        binary_size_bytes=facts.binary_size_bytes if facts else None,
        sampler=outcome.sampler,
        log=str(outcome.log_path),
        checks=judge(plan, outcome, facts, standin=standin),
    )
    (report_dir / "report.json").write_text(json.dumps(report.as_json(), indent=2) + "\n")
    return report


def build_ref(  # noqa: PLR0913  # each an independent choice of the user; keyword-only
    inputs: BuildInputs,
    *,
    build_args: Mapping[str, str],
    report_dir: Path,
    builder: str | None = None,
    cache_namespace: str | None = None,
    console: Console | None = None,
    sample_interval: float = 0.25,
) -> BuildReport:
    """Plan the build of the prepared ref with these build args, run it sampled, and check the image."""
    plan = plan_build(
        ref=inputs.ref,
        patched_dockerfile=inputs.patched_dockerfile,
        context=inputs.context,
        source=inputs.source,
        build_args=build_args,
        run_id=uuid.uuid4().hex[:12],
        base_image=inputs.base_image,
        builder=builder,
        cache_namespace=cache_namespace,
    )
    return build_and_check(
        plan, report_dir=report_dir, standin=inputs.standin, console=console, sample_interval=sample_interval
    )
