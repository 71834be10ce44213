"""Semantic checks of a patched MAS Dockerfile, without Docker.

Each check is a named Finding about one Dockerfile line. Reading the file (ARG
and ENV positions, what the cargo command line says) is combined with running
the cargo build RUN script itself under `sh`, with test doubles for cargo and
rustup first on PATH (harness/doubles/), in the environment BuildKit would give
it: what the script really asks of rustup and cargo, and what it moves where,
is then a recorded fact rather than a reading of shell text.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harness.analysis import dockerfile as dfm
from harness.analysis.dockerfile import ARCH_TRIPLES, Dockerfile, RunStep, Stage
from harness.config.series import Shape
from harness.errors import EnvironmentProblem
from harness.proc import run

log = logging.getLogger("harness")

# The documented defaults of the four knobs (see the patch header).
KNOB_DEFAULTS: Mapping[str, str] = {
    "CARGO_BUILD_JOBS": "2",
    "CARGO_PROFILE_RELEASE_LTO": "false",
    "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16",
    "MAS_BUILD_TARGETS": "",
}
CARGO_KNOBS = ("CARGO_BUILD_JOBS", "CARGO_PROFILE_RELEASE_LTO", "CARGO_PROFILE_RELEASE_CODEGEN_UNITS")
SUPPORTED_TRIPLES = tuple(ARCH_TRIPLES.values())
TRIPLE_ARCH: Mapping[str, str] = {t: a for a, t in ARCH_TRIPLES.items()}

# Values no default has, so seeing them in cargo's environment proves the
# build arg reached it (through ARG and ENV), not some hard-coded value.
KNOB_PROBES: Mapping[str, str] = {
    "CARGO_BUILD_JOBS": "1",
    "CARGO_PROFILE_RELEASE_LTO": "thin",
    "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "7",
}

# The literal destination prefix of the move step, redirected into a temporary
# directory for execution (the only change made to the script text).
INSTALL_PREFIX = "/usr/local/bin/"

DOUBLES_DIR = Path(__file__).parent / "doubles"
_DOUBLE_SCRIPT = DOUBLES_DIR / "tool_double.py"
_DOUBLED_TOOLS = ("cargo", "rustup")


@dataclass(frozen=True, kw_only=True)
class Finding:
    check: str
    ok: bool
    line: int | None
    message: str


# --- running the build script -------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    tool: str
    argv: tuple[str, ...]
    env: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class CopySource:
    """A final stage's `COPY --from=builder` source, as that stage expands it."""

    line: int
    path: str
    content: str | None  # None: the builder did not produce it


@dataclass(frozen=True, kw_only=True)
class ScriptRun:
    build_args: Mapping[str, str]
    targetarch: str
    returncode: int
    stderr: str
    calls: tuple[ToolCall, ...]
    installed: Mapping[str, str]  # file name under /usr/local/bin -> content
    left_in_target: tuple[str, ...]  # binaries still under target/ (copied, not moved)
    new_files_in_workdir: tuple[str, ...]  # anything the script created besides target/
    copy_sources: tuple[CopySource, ...] = field(default=())
    steps: tuple[int, ...] = field(default=())
    """First lines of the RUNs executed: the build RUN, then its move steps."""
    failed_line: int | None = None
    """The RUN that exited non-zero, if one did."""

    @property
    def cargo_builds(self) -> list[ToolCall]:
        return [c for c in self.calls if c.tool == "cargo" and "build" in c.argv[:2]]

    @property
    def cargo_targets(self) -> list[str]:
        return [t for c in self.cargo_builds for t in _option_values(c.argv, "--target")]

    @property
    def rustup_targets(self) -> list[str]:
        """Targets passed to `rustup target add|install` (options and their values left out)."""
        found = []
        for c in self.calls:
            if c.tool == "rustup" and c.argv[:1] == ("target",) and c.argv[1:2] in (("add",), ("install",)):
                found.extend(_positionals(c.argv[2:], takes_value={"--toolchain"}))
        return found


def _option_values(argv: Sequence[str], option: str) -> list[str]:
    values = []
    for i, a in enumerate(argv):
        if a == option and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif a.startswith(option + "="):
            values.append(a.split("=", 1)[1])
    return values


def _positionals(argv: Sequence[str], *, takes_value: set[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in takes_value:
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


def tool_path(name: str) -> str:
    """A lint tool, preferring the one installed next to this interpreter (pinned with the harness)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise EnvironmentProblem(f"`{name}` is not installed: install the harness dependencies (pip install {name}-py)")
    return found


def _shell() -> str:
    # BuildKit runs RUN scripts with the image's /bin/sh, which is dash in the
    # Debian rust images; bash would accept things dash rejects.
    return shutil.which("dash") or "/bin/sh"


def write_doubles(bin_dir: Path) -> Path:
    """Write the cargo/rustup wrappers into `bin_dir` (created) and return it.

    Runs in parallel threads must share wrappers written before the threads
    start: a wrapper still open for writing in one thread is inherited by a
    child another thread forks, and exec'ing it then fails with ETXTBSY.
    """
    bin_dir.mkdir(parents=True)
    for tool in _DOUBLED_TOOLS:
        wrapper = bin_dir / tool
        # -I -S: the double needs only the standard library; start it fast and
        # unaffected by the caller's PYTHON* variables.
        wrapper.write_text(
            f"#!/bin/sh\nexec '{sys.executable}' -I -S '{_DOUBLE_SCRIPT}' {tool} \"$@\"\n", encoding="utf-8"
        )
        wrapper.chmod(0o755)
    return bin_dir


def _shell_safe_path(path: Path) -> str:
    text = str(path)
    # The path is pasted into the script unquoted (in place of /usr/local/bin/).
    if not all(ch.isalnum() or ch in "/._-" for ch in text):
        raise EnvironmentProblem(f"temporary directory `{text}` has characters unsafe in a shell word; set TMPDIR")
    return text


def move_steps(stage: Stage, build_run: RunStep) -> list[RunStep]:
    """Later RUNs of the builder stage that take binaries out of target/ or put them in /usr/local/bin/.

    Upstream up to v0.14.1 moved the binaries in separate RUN steps after the
    build; a patch that leaves one of them in place breaks any build that did
    not ask for its target, so these steps are run too. Other later RUNs
    (none upstream) are not run: they have nothing to do with the binaries.
    """
    return [
        r
        for r in stage.runs
        if r.start_line > build_run.start_line
        and not r.exec_form
        and (INSTALL_PREFIX in r.script or "target/" in r.script)
    ]


@dataclass
class _CacheMounts:
    """`--mount=type=cache` directories under the working directory: kept apart from the image layer.

    A file written to a cache mount is not in the layer, so a later RUN without
    that mount does not see it (upstream moves binaries in the build RUN for
    that reason). Mounts outside the working directory are not modelled.
    """

    app: Path
    store: Path

    def mount(self, relative: str, stash: Path) -> None:
        layer, cached = self.app / relative, self.store / relative
        if layer.exists():
            stash.parent.mkdir(parents=True, exist_ok=True)
            layer.rename(stash)
        if cached.exists():
            layer.parent.mkdir(parents=True, exist_ok=True)
            cached.rename(layer)
        else:
            layer.mkdir(parents=True)

    def unmount(self, relative: str, stash: Path) -> None:
        layer, cached = self.app / relative, self.store / relative
        cached.parent.mkdir(parents=True, exist_ok=True)
        layer.rename(cached)
        if stash.exists():
            stash.rename(layer)


def run_build_script(
    df: Dockerfile,
    build_args: Mapping[str, str],
    *,
    targetarch: str,
    workdir_files: Sequence[str] = (),
    doubles_dir: Path | None = None,
) -> ScriptRun:
    """Run the builder stage's cargo build RUN, then its move steps, under sh with cargo/rustup doubles.

    Each script is the one BuildKit would run, with one explicit textual change:
    the literal prefix `/usr/local/bin/` is replaced by a temporary directory's
    `.../usr/local/bin/`, so the move step lands somewhere we can look. The
    environment is exactly the ARG/ENV values BuildKit would give (plus PATH
    and the doubles' log file): nothing of the caller's environment leaks in.
    The steps share one working directory, except for what a RUN writes to a
    cache mount under it (see _CacheMounts); the first failing step ends the run.
    `workdir_files` are empty files created in the working directory first
    (decoys, e.g. a file named like a triple to catch unquoted globbing).
    `doubles_dir` holds doubles written beforehand (see write_doubles); by
    default they are written for this run alone.
    """
    stage = df.builder
    build_run = dfm.find_build_run(stage)
    steps = [build_run, *move_steps(stage, build_run)]
    with tempfile.TemporaryDirectory(prefix="mas-build-script-") as tmp:
        root = Path(tmp)
        app, dest = root / "app", root / "usr" / "local" / "bin"
        bin_dir = doubles_dir or write_doubles(root / "doubles-bin")
        app.mkdir()
        dest.mkdir(parents=True)
        for name in workdir_files:
            (app / name).touch()
        before = set(workdir_files)
        call_log = root / "calls.jsonl"
        caches = _CacheMounts(app=app, store=root / "cache-mounts")
        returncode, stderr, failed_line = 0, [], None
        for step in steps:
            workdir = dfm.workdir_at(stage, step.start_line)
            mounted = [
                rel
                for target in dfm.cache_mount_targets(step)
                if (rel := dfm.relative_to_workdir(target, workdir)) is not None
            ]
            for index, rel in enumerate(mounted):
                caches.mount(rel, root / "layer-stash" / str(index))
            env = dfm.environment_at(df, stage, step.start_line, build_args, targetarch=targetarch)
            script = step.script.replace(INSTALL_PREFIX, _shell_safe_path(root) + INSTALL_PREFIX)
            log.debug("running the RUN at line %d with %s rewritten to %s", step.start_line, INSTALL_PREFIX, dest)
            proc = run(
                "env",
                "-i",
                f"PATH={bin_dir}:/usr/bin:/bin",
                f"HARNESS_DOUBLE_LOG={call_log}",
                *(f"{k}={v}" for k, v in env.items()),
                _shell(),
                "-c",
                script,
                cwd=app,
                check=False,
            )
            for index, rel in enumerate(mounted):
                caches.unmount(rel, root / "layer-stash" / str(index))
            stderr.append(proc.stderr.decode(errors="replace"))
            if proc.returncode != 0:
                returncode, failed_line = proc.returncode, step.start_line
                break
        calls = tuple(
            ToolCall(tool=r["tool"], argv=tuple(r["argv"]), env=r["env"])
            for r in (json.loads(line) for line in _read_lines(call_log))
        )
        installed = {p.name: p.read_text(errors="replace") for p in sorted(dest.iterdir())}
        # Copied rather than moved: still in target/, in the layer or in its cache mount.
        left = tuple(
            sorted(
                str(p.relative_to(base))
                for base in (app, caches.store)
                if (base / "target").is_dir()
                for p in (base / "target").rglob("*")
                if p.is_file()
            )
        )
        new = tuple(sorted(p.name for p in app.iterdir() if p.name not in before and p.name != "target"))
        copies = tuple(_copy_sources(df, root, targetarch=targetarch))
    return ScriptRun(
        build_args=dict(build_args),
        targetarch=targetarch,
        returncode=returncode,
        stderr="".join(stderr),
        calls=calls,
        installed=installed,
        left_in_target=left,
        new_files_in_workdir=new,
        copy_sources=copies,
        steps=tuple(s.start_line for s in steps),
        failed_line=failed_line,
    )


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _copy_sources(df: Dockerfile, root: Path, *, targetarch: str) -> list[CopySource]:
    found = []
    for stage in df.stages:
        for copy in stage.copies_from:
            if copy.source_stage.lower() != "builder":
                continue
            env = dfm.environment_at(df, stage, copy.line, {}, targetarch=targetarch)
            for source in copy.sources:
                path = dfm.expand(source, env)
                local = root / path.lstrip("/")
                content = local.read_text(errors="replace") if local.is_file() else None
                found.append(CopySource(line=copy.line, path=path, content=content))
    return found


# --- the checks -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Scenario:
    label: str
    build_args: Mapping[str, str]
    targetarch: str
    expected: tuple[str, ...]  # triples; () for input that must be refused
    workdir_files: tuple[str, ...] = ()


_BOTH = " ".join(SUPPORTED_TRIPLES)
GOOD_SCENARIOS = (
    Scenario(label="defaults, TARGETARCH=amd64", build_args={}, targetarch="amd64", expected=(ARCH_TRIPLES["amd64"],)),
    Scenario(label="defaults, TARGETARCH=arm64", build_args={}, targetarch="arm64", expected=(ARCH_TRIPLES["arm64"],)),
    Scenario(
        label="both targets, knobs set",
        build_args={"MAS_BUILD_TARGETS": _BOTH, **KNOB_PROBES},
        targetarch="amd64",
        expected=SUPPORTED_TRIPLES,
    ),
    Scenario(
        label="aarch64 only, TARGETARCH=amd64",
        build_args={"MAS_BUILD_TARGETS": ARCH_TRIPLES["arm64"]},
        targetarch="amd64",
        expected=(ARCH_TRIPLES["arm64"],),
    ),
)
BAD_SCENARIOS = (
    Scenario(
        label="unknown triple",
        build_args={"MAS_BUILD_TARGETS": "riscv64gc-unknown-linux-gnu"},
        targetarch="amd64",
        expected=(),
    ),
    Scenario(
        label="duplicated triple",
        build_args={"MAS_BUILD_TARGETS": f"{ARCH_TRIPLES['amd64']} {ARCH_TRIPLES['amd64']}"},
        targetarch="amd64",
        expected=(),
    ),
    Scenario(
        label="command injection",
        build_args={"MAS_BUILD_TARGETS": f"{ARCH_TRIPLES['amd64']};touch pwned"},
        targetarch="amd64",
        expected=(),
    ),
    # A file named like a triple in the working directory: an unquoted, unset -f
    # expansion of the pattern would turn into a valid-looking target. Not `*`:
    # it would also match target/ (the cache mount) and be refused by luck.
    Scenario(
        label="glob",
        build_args={"MAS_BUILD_TARGETS": "x86_64-*"},
        targetarch="amd64",
        expected=(),
        workdir_files=(ARCH_TRIPLES["amd64"],),
    ),
    Scenario(label="empty, unsupported TARGETARCH", build_args={}, targetarch="riscv64", expected=()),
)


_OTHER_ARCH = {"amd64": "arm64", "arm64": "amd64"}
SINGLE_GOOD_SCENARIOS = (
    *GOOD_SCENARIOS[:2],
    Scenario(
        label="the TARGETARCH triple named, knobs set",
        build_args={"MAS_BUILD_TARGETS": ARCH_TRIPLES["amd64"], **KNOB_PROBES},
        targetarch="amd64",
        expected=(ARCH_TRIPLES["amd64"],),
    ),
    Scenario(
        label="the TARGETARCH triple named, TARGETARCH=arm64",
        build_args={"MAS_BUILD_TARGETS": ARCH_TRIPLES["arm64"]},
        targetarch="arm64",
        expected=(ARCH_TRIPLES["arm64"],),
    ),
)
SINGLE_BAD_SCENARIOS = (
    *BAD_SCENARIOS,
    # One build makes one binary, /usr/local/bin/mas-cli, for TARGETARCH: anything else is refused.
    Scenario(label="both targets", build_args={"MAS_BUILD_TARGETS": _BOTH}, targetarch="amd64", expected=()),
    Scenario(
        label="the other architecture's triple",
        build_args={"MAS_BUILD_TARGETS": ARCH_TRIPLES["arm64"]},
        targetarch="amd64",
        expected=(),
    ),
)


@dataclass(frozen=True, kw_only=True)
class ShapeRules:
    """What a patched Dockerfile of one builder-stage shape must do (see harness/series.py)."""

    shape: Shape
    good: tuple[Scenario, ...]
    bad: tuple[Scenario, ...]

    def binary(self, triple: str) -> str:
        """The file under /usr/local/bin the move step gives the binary built for `triple`."""
        return "mas-cli" if self.shape == "single" else f"mas-cli-{TRIPLE_ARCH.get(triple, '?')}"


SHAPE_RULES: Mapping[Shape, ShapeRules] = {
    "per-arch": ShapeRules(shape="per-arch", good=GOOD_SCENARIOS, bad=BAD_SCENARIOS),
    "single": ShapeRules(shape="single", good=SINGLE_GOOD_SCENARIOS, bad=SINGLE_BAD_SCENARIOS),
}


def detect_shape(df: Dockerfile) -> Shape:
    """`single` when every stage copies the builder's binary from /usr/local/bin/mas-cli, else `per-arch`.

    For a Dockerfile checked on its own, with no series to say which shape it should have.
    """
    names = set()
    for stage in df.stages:
        for copy in stage.copies_from:
            if copy.source_stage.lower() != "builder":
                continue
            env = dfm.environment_at(df, stage, copy.line, {}, targetarch="amd64")
            names |= {PurePosixPath(dfm.expand(s, env)).name for s in copy.sources}
    binaries = {n for n in names if n.startswith("mas-cli")}
    return "single" if binaries == {"mas-cli"} else "per-arch"


def check_dockerfile(
    text: str,
    *,
    name: str = "Dockerfile",
    knob_defaults: Mapping[str, str] = KNOB_DEFAULTS,
    shape: Shape | None = None,
) -> list[Finding]:
    """All semantic checks of a patched Dockerfile of the given shape (None: read from the file's COPY lines).

    Raises DockerfileError (a BadInput) if the file does not parse or has no
    builder stage with one cargo build RUN.
    """
    try:
        df = dfm.parse(text)
        stage = df.builder
        build_run = dfm.find_build_run(stage)
    except dfm.DockerfileError as e:
        raise dfm.DockerfileError(f"{name}: {e}") from e
    rules = SHAPE_RULES[shape or detect_shape(df)]
    # The runs are independent and spend their time waiting on sh and the doubles.
    with tempfile.TemporaryDirectory(prefix="mas-doubles-") as tmp, ThreadPoolExecutor(max_workers=4) as pool:
        doubles = write_doubles(Path(tmp) / "bin")
        runs = list(
            pool.map(
                lambda s: run_build_script(
                    df, s.build_args, targetarch=s.targetarch, workdir_files=s.workdir_files, doubles_dir=doubles
                ),
                (*rules.good, *rules.bad),
            )
        )
    good = list(zip(rules.good, runs[: len(rules.good)], strict=True))
    bad = list(zip(rules.bad, runs[len(rules.good) :], strict=True))
    return [
        *check_knobs_declared(stage, build_run, knob_defaults),
        *check_cargo_env(stage, build_run, good),
        *check_target_flags(build_run, good),
        *check_move_step(build_run, good, rules),
        *check_rustup_targets(stage, build_run, good),
        *check_targets_validated(build_run, bad),
    ]


def check_knobs_declared(stage: Stage, build_run: RunStep, defaults: Mapping[str, str]) -> list[Finding]:
    findings = []
    for knob, expected in defaults.items():
        decls = [a for a in stage.args if a.name == knob]
        before = [a for a in decls if a.line < build_run.start_line]
        if not before:
            where = f"only after it, line {decls[0].line}" if decls else "nowhere in the stage"
            findings.append(
                Finding(
                    check="knobs-declared",
                    ok=False,
                    line=decls[0].line if decls else build_run.start_line,
                    message=f"ARG {knob} must be declared in the builder stage before the cargo build "
                    f"RUN (line {build_run.start_line}); it is declared {where}",
                )
            )
            continue
        effective = before[-1]  # the declaration the RUN sees when no build arg is given
        shown = "no default" if effective.default is None else f"default {effective.default!r}"
        findings.append(
            Finding(
                check="knobs-declared",
                ok=effective.default == expected,
                line=effective.line,
                message=f"ARG {knob} has {shown}"
                + ("" if effective.default == expected else f", expected {expected!r}"),
            )
        )
    return findings


def check_cargo_env(stage: Stage, build_run: RunStep, good: Sequence[tuple[Scenario, ScriptRun]]) -> list[Finding]:
    findings = []
    for knob in CARGO_KNOBS:
        sets = [e for e in stage.envs if e.name == knob and e.line < build_run.start_line]
        if not sets:
            findings.append(
                Finding(
                    check="cargo-env",
                    ok=False,
                    line=build_run.start_line,
                    message=f"no ENV {knob}=${{{knob}}} in the builder stage before the cargo build "
                    f"RUN: cargo may see the build arg, but the image does not record it",
                )
            )
            continue
        env_set = sets[-1]
        arg_first = stage.arg(knob)
        refers = dfm.expand(env_set.value, {knob: KNOB_PROBES[knob]}) == KNOB_PROBES[knob]
        declared = arg_first is not None and arg_first.line < env_set.line
        ok = refers and declared
        why = (
            ""
            if ok
            else (
                f": its value {env_set.value!r} is not ${{{knob}}}"
                if not refers
                else f": ARG {knob} is not declared before it, so it expands to nothing"
            )
        )
        findings.append(
            Finding(
                check="cargo-env",
                ok=ok,
                line=env_set.line,
                message=f"ENV {knob}={env_set.value}" + (" takes the build arg" if ok else why),
            )
        )
    probe = [(s, r) for s, r in good if all(s.build_args.get(k) == v for k, v in KNOB_PROBES.items())]
    for scenario, result in probe:
        builds = result.cargo_builds
        wrong = sorted({f"{k}={c.env.get(k)!r}" for c in builds for k, v in KNOB_PROBES.items() if c.env.get(k) != v})
        ok = bool(builds) and not wrong
        findings.append(
            Finding(
                check="cargo-env",
                ok=ok,
                line=build_run.start_line,
                message=f"running the build script ({scenario.label}): "
                + (
                    "cargo saw " + ", ".join(f"{k}={v}" for k, v in KNOB_PROBES.items())
                    if ok
                    else "cargo did not run"
                    if not builds
                    else "cargo saw " + ", ".join(wrong)
                ),
            )
        )
    return findings


def check_target_flags(build_run: RunStep, good: Sequence[tuple[Scenario, ScriptRun]]) -> list[Finding]:
    findings = []
    literal = []
    for words in dfm.commands_of(build_run, "cargo", "auditable", "build"):
        values = _option_values(words, "--target")
        literal += [w for w in words if w in SUPPORTED_TRIPLES] + [v for v in values if "$" not in v]
    findings.append(
        Finding(
            check="target-flags",
            ok=not literal,
            line=build_run.start_line,
            message="the cargo build command line has no hard-coded target"
            if not literal
            else "hard-coded target(s) on the cargo build command line: " + " ".join(dict.fromkeys(literal)),
        )
    )
    for scenario, result in good:
        builds = result.cargo_builds
        got = result.cargo_targets
        ok = len(builds) == 1 and sorted(got) == sorted(scenario.expected)
        findings.append(
            Finding(
                check="target-flags",
                ok=ok,
                line=build_run.start_line,
                message=f"running the build script ({scenario.label}): cargo ran {len(builds)} build(s) with --target "
                f"{' '.join(got) or '(none)'}" + ("" if ok else f"; expected {' '.join(scenario.expected)}"),
            )
        )
    return findings


def check_move_step(
    build_run: RunStep, good: Sequence[tuple[Scenario, ScriptRun]], rules: ShapeRules = SHAPE_RULES["per-arch"]
) -> list[Finding]:
    note = f"(script run with {INSTALL_PREFIX} rewritten to a temporary directory)"
    findings = []
    for scenario, result in good:
        built = result.cargo_targets
        expected = {rules.binary(t): f"mas-cli built for {t}\n" for t in built}
        problems = []
        if result.returncode != 0:
            problems.append(
                f"the RUN at line {result.failed_line} exited {result.returncode}: {_last_line(result.stderr)}"
            )
        if dict(result.installed) != expected:
            problems.append(f"moved {_describe(result.installed)}, expected {_describe(expected)}")
        if result.left_in_target:
            problems.append("left in target/: " + " ".join(result.left_in_target))
        later = [line for line in result.steps if line != build_run.start_line]
        steps = f" (with the move steps at line {', '.join(map(str, later))})" if later else ""
        findings.append(
            Finding(
                check="move-step",
                ok=not problems,
                line=build_run.start_line,
                message=f"{scenario.label}: "
                + ("; ".join(problems) if problems else f"moved {_describe(result.installed)}{steps} {note}"),
            )
        )
        if scenario.build_args:
            continue  # the final stages copy what the default (TARGETARCH) build produces
        for copy in result.copy_sources:
            want = f"mas-cli built for {ARCH_TRIPLES[scenario.targetarch]}\n"
            ok = copy.content == want
            findings.append(
                Finding(
                    check="move-step",
                    ok=ok,
                    line=copy.line,
                    message=f"COPY --from=builder {copy.path} (TARGETARCH={scenario.targetarch}): "
                    + (
                        "the builder produces it"
                        if ok
                        else "the builder does not produce it"
                        if copy.content is None
                        else f"holds {copy.content.strip()!r}, not the {scenario.targetarch} build"
                    ),
                )
            )
    return findings


def check_rustup_targets(stage: Stage, build_run: RunStep, good: Sequence[tuple[Scenario, ScriptRun]]) -> list[Finding]:
    findings = []
    for other in stage.runs:
        if other.start_line == build_run.start_line or other.exec_form:
            continue
        for words in dfm.commands_of(other, "rustup"):
            adds = words[1:2] == ["target"] and words[2:3] in (["add"], ["install"])
            if adds or "--target" in words or "-t" in words:
                findings.append(
                    Finding(
                        check="rustup-targets",
                        ok=False,
                        line=other.start_line,
                        message=f"a RUN other than the build step installs rustup targets whatever "
                        f"MAS_BUILD_TARGETS says: {' '.join(words)}",
                    )
                )
    for scenario, result in good:
        got = result.rustup_targets
        first_cargo = next((i for i, c in enumerate(result.calls) if c.tool == "cargo"), len(result.calls))
        late = any(c.tool == "rustup" for c in result.calls[first_cargo:])
        ok = sorted(got) == sorted(scenario.expected) and not late
        findings.append(
            Finding(
                check="rustup-targets",
                ok=ok,
                line=build_run.start_line,
                message=f"running the build script ({scenario.label}): rustup added {' '.join(got) or '(none)'}"
                + ("" if sorted(got) == sorted(scenario.expected) else f"; expected {' '.join(scenario.expected)}")
                + ("; rustup ran after cargo" if late else ""),
            )
        )
    return findings


def check_targets_validated(build_run: RunStep, bad: Sequence[tuple[Scenario, ScriptRun]]) -> list[Finding]:
    findings = []
    for scenario, result in bad:
        lines = result.stderr.strip().splitlines()
        problems = []
        if result.returncode == 0:
            problems.append("the script succeeded")
        if result.calls:
            problems.append("it ran " + ", ".join(dict.fromkeys(c.tool for c in result.calls)) + " first")
        if result.installed or result.left_in_target or result.new_files_in_workdir:
            problems.append(
                "it left files: " + " ".join([*result.installed, *result.left_in_target, *result.new_files_in_workdir])
            )
        if len(lines) != 1 or "MAS_BUILD_TARGETS" not in lines[0]:
            problems.append(f"stderr is not one line naming MAS_BUILD_TARGETS: {result.stderr.strip()!r}")
        value = scenario.build_args.get("MAS_BUILD_TARGETS", "")
        findings.append(
            Finding(
                check="targets-validated",
                ok=not problems,
                line=build_run.start_line,
                message=f"{scenario.label} (MAS_BUILD_TARGETS={value!r}, TARGETARCH={scenario.targetarch}): "
                + ("; ".join(problems) if problems else f"refused: {lines[0]}"),
            )
        )
    return findings


def _describe(files: Mapping[str, str]) -> str:
    if not files:
        return "nothing"
    return ", ".join(f"{INSTALL_PREFIX}{n} ({c.strip()})" for n, c in sorted(files.items()))


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


# --- lint -----------------------------------------------------------------------


def changed_runs(pristine: str, patched: str) -> list[RunStep]:
    """The shell-form RUNs of the patched file whose script is not in the pristine file."""
    before = {r.script for s in dfm.parse(pristine).stages for r in s.runs}
    return [r for s in dfm.parse(patched).stages for r in s.runs if not r.exec_form and r.script not in before]


def check_shellcheck(pristine: str, patched: str) -> list[Finding]:
    """Every RUN script the patch adds or changes passes `shellcheck -s sh` (as sh runs it: one line)."""
    shellcheck = tool_path("shellcheck")
    findings = []
    for step in changed_runs(pristine, patched):
        proc = run(shellcheck, "-s", "sh", "-f", "json1", "-", input_bytes=step.script.encode(), check=False)
        try:
            comments = json.loads(proc.stdout)["comments"]
        except (ValueError, KeyError) as e:
            raise EnvironmentProblem(
                f"shellcheck gave no JSON report (exit {proc.returncode}): "
                f"{_last_line(proc.stderr.decode(errors='replace'))}"
            ) from e
        messages = [f"SC{c['code']} ({c['level']}): {c['message']}" for c in comments]
        findings.append(
            Finding(
                check="shellcheck",
                ok=not messages,
                line=step.start_line,
                message="RUN script passes shellcheck -s sh" if not messages else "; ".join(messages),
            )
        )
    if not findings:
        findings.append(Finding(check="shellcheck", ok=True, line=None, message="the patch adds or changes no RUN"))
    return findings


def _hadolint(text: str, config: Path) -> list[dict[str, object]]:
    proc = run(tool_path("hadolint"), "--config", config, "-f", "json", "-", input_bytes=text.encode(), check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError as e:
        raise EnvironmentProblem(
            f"hadolint gave no JSON report (exit {proc.returncode}): {_last_line(proc.stderr.decode(errors='replace'))}"
        ) from e
    if not isinstance(report, list):
        raise EnvironmentProblem(f"hadolint failed: {report}")
    return report


def check_hadolint_new_findings(pristine: str, patched: str) -> list[Finding]:
    """hadolint reports nothing on the patched file that it does not report on the pristine one.

    Compared by rule code and message, as a multiset: lines shift with the patch.
    """
    with tempfile.TemporaryDirectory(prefix="mas-hadolint-") as tmp:
        # An explicit, empty config: the user's ~/.config/hadolint.yaml must not change the verdict.
        config = Path(tmp) / "hadolint.yaml"
        config.write_text("ignored: []\n", encoding="utf-8")
        old = _hadolint(pristine, config)
        new = _hadolint(patched, config)
    remaining = Counter((str(r["code"]), str(r["message"])) for r in old)
    findings = []
    for r in new:
        key = (str(r["code"]), str(r["message"]))
        if remaining[key] > 0:
            remaining[key] -= 1
            continue
        line = r.get("line")
        findings.append(
            Finding(
                check="hadolint-new-findings",
                ok=False,
                line=line if isinstance(line, int) else None,
                message=f"{key[0]} ({r.get('level')}): {key[1]}",
            )
        )
    if not findings:
        findings.append(
            Finding(
                check="hadolint-new-findings",
                ok=True,
                line=None,
                message=f"no new hadolint finding ({len(new)} on the patched file, all also upstream)",
            )
        )
    return findings


def check_patched(
    patched: str, *, pristine: str | None, name: str = "Dockerfile", shape: Shape | None = None
) -> list[Finding]:
    """The semantic checks, plus the lint comparisons when the upstream original is known."""
    findings = check_dockerfile(patched, name=name, shape=shape)
    if pristine is not None:
        findings += check_shellcheck(pristine, patched) + check_hadolint_new_findings(pristine, patched)
    return findings
