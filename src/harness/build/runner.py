"""Build the patched upstream Dockerfile's builder stage for real, sample it, and check the image.

Planned first, then run: `plan_build()` resolves the Dockerfile build copy, the
build args and contexts, and every deviation from upstream into a frozen
`BuildPlan`; `run_build()` executes it with `docker buildx build` (through
python-on-whales) under the process sampler; `inspect_image()` runs the result
with testcontainers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from python_on_whales import DockerException, docker
from rich.console import Console
from rich.live import Live
from rich.text import Text

from harness.analysis import dockerfile as dfm
from harness.analysis.semantic import detect_shape
from harness.build.baseimage import LocalRustImage, ensure_rust_base_image
from harness.build.sampler import ProcessSampler, SamplerReport
from harness.errors import BadInput, EnvironmentProblem
from harness.knobs import Shape, expected_binaries, requested_targets
from harness.proc import run
from harness.upstream.cache import DOCKERFILE, ResolvedRef, UpstreamCache

log = logging.getLogger("harness")

MIN_ENGINE = (23, 0)
"""The first engine whose default builder is BuildKit with a frontend that knows RUN --network."""
MIN_BUILDX = (0, 10)
REGISTRY_HOST = "registry-1.docker.io"
_SYNTAX = re.compile(rb"^#\s*syntax\s*=", re.IGNORECASE)
_CACHE_MOUNT = re.compile(rb"--mount=(type=cache,[^\s\\]*)")
_VERSION = re.compile(r"(\d+)\.(\d+)")


# -- the engine ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Engine:
    server_version: str
    buildx_version: str


def _version_tuple(text: str) -> tuple[int, int]:
    match = _VERSION.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def check_engine() -> Engine:
    """The engine and buildx must be new enough for MAS Dockerfiles, or we say exactly what is wrong."""
    try:
        server = docker.version().server
    except DockerException as exc:
        raise EnvironmentProblem(
            "no Docker engine answers (`docker version` failed); on Debian run scripts/install-docker-engine.sh"
            f": {str(exc.stderr or exc).strip().splitlines()[-1:]}"
        ) from None
    server_version = server.version if server and server.version else "unknown"
    if _version_tuple(server_version) < MIN_ENGINE:
        raise EnvironmentProblem(
            f"Docker engine {server_version} is too old for MAS Dockerfiles (RUN --network needs >= "
            f"{'.'.join(map(str, MIN_ENGINE))}); run scripts/install-docker-engine.sh"
        )
    try:
        buildx = docker.buildx.version()
    except DockerException:
        raise EnvironmentProblem("the docker buildx plugin is missing; run scripts/install-docker-engine.sh") from None
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


# -- the build context ---------------------------------------------------------------------------


def build_context(source: str, *, cache: UpstreamCache, resolved: ResolvedRef, work_dir: Path, standin: Path) -> Path:
    """`standin` (the test double), `full` (a full checkout of the ref, made once) or a source tree's path."""
    if source == "standin":
        return standin
    if source == "full":
        context = work_dir / f"full-{resolved.commit[:12]}"
        if not (context / DOCKERFILE).is_file():
            cache.checkout(resolved, context)
        return context
    context = Path(source)
    if not context.is_dir():
        raise BadInput(f"--source {source}: not standin, full, or a directory")
    return context


# -- planning ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BuildPlan:
    ref: str
    dockerfile: bytes
    """The build copy: the patched Dockerfile, byte for byte but for an air-gapped syntax line."""
    context: Path
    source: str
    """`standin`, `full` or a path."""
    build_args: dict[str, str]
    build_contexts: dict[str, str | Path]
    air_gapped: bool
    deviations: tuple[str, ...]
    image_tag: str
    target: str = "builder"
    builder: str | None = None


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


def plan_build(
    *,
    ref: str,
    patched_dockerfile: bytes,
    context: Path,
    source: str,
    build_args: Mapping[str, str],
    air_gapped: bool,
    work_dir: Path,
    builder: str | None = None,
    base_image: LocalRustImage | None = None,
    cache_namespace: str | None = None,
) -> BuildPlan:
    args = dict(build_args)
    deviations: list[str] = []
    if cache_namespace:
        isolated = isolate_cache_mounts(patched_dockerfile, namespace=cache_namespace)
        if isolated != patched_dockerfile:
            deviations.append(f"cache mount of /app/target given id {cache_namespace}/app/target: it starts empty")
        patched_dockerfile = isolated
    if "VERGEN_GIT_DESCRIBE" not in args:
        # The layer cache would otherwise serve an unchanged build step without running cargo,
        # leaving nothing to sample; this ARG feeds an ENV just before the build RUN.
        args["VERGEN_GIT_DESCRIBE"] = f"mas-harness-{uuid.uuid4().hex[:12]}"
        deviations.append("VERGEN_GIT_DESCRIBE set to a per-run value so the build step runs, not the layer cache")
    contexts: dict[str, str | Path] = {}
    dockerfile = patched_dockerfile
    if air_gapped:
        dockerfile, dropped = drop_syntax_line(patched_dockerfile)
        if dropped:
            log.info("air-gapped: dropped %r from the build copy of the Dockerfile", dropped)
            deviations.append(f"air-gapped: dropped the line {dropped!r} (BuildKit's built-in frontend is used)")
        parsed = dfm.parse(dockerfile.decode())
        defaults = {a.name: a.default for a in parsed.global_args}
        suite = args.get("DEBIAN_VERSION_NAME") or defaults.get("DEBIAN_VERSION_NAME") or "bookworm"
        wanted_rustc = args.get("RUSTC_VERSION") or defaults.get("RUSTC_VERSION") or ""
        image = base_image or ensure_rust_base_image(suite, work_dir=work_dir)
        contexts.update(image.build_contexts())
        if wanted_rustc != image.rustc_version:
            args["RUSTC_VERSION"] = image.rustc_version
            deviations.append(
                f"RUSTC_VERSION {wanted_rustc} replaced by the local toolchain {image.rustc_version} "
                f"(base image {image.tag} stands in for docker.io/library/rust:{wanted_rustc}-{suite})"
            )
        else:
            deviations.append(f"base image {image.tag} stands in for {image.upstream_ref}")
    digest = hashlib.sha256(repr((ref, source, sorted(args.items()))).encode()).hexdigest()[:12]
    return BuildPlan(
        ref=ref,
        dockerfile=dockerfile,
        context=context,
        source=source,
        build_args=args,
        build_contexts=contexts,
        air_gapped=air_gapped,
        deviations=tuple(deviations),
        image_tag=f"mas-harness/builder:{re.sub(r'[^A-Za-z0-9_.-]', '-', ref)}-{digest}",
        builder=builder,
    )


# -- running -------------------------------------------------------------------------------------


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
    # Ryuk, testcontainers' reaper, is an image to pull; the context manager removes the container itself.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415  # reads the variable on import

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


def plan_shape(plan: BuildPlan) -> Shape:
    """The builder shape of the Dockerfile being built, read from its COPY lines."""
    return detect_shape(dfm.parse(plan.dockerfile.decode()))


# -- one build and its checks, as data --------------------------------------------------------------


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
