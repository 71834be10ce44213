"""Run a Dockerfile's build RUN scripts under `sh`, with test doubles for cargo and rustup, and record what they do.

The builder stage's cargo build RUN (and, as v0.14 had them, its later move steps)
runs in the environment BuildKit would give it, with test-double `cargo` and
`rustup` first on PATH (harness/analysis/doubles/): what the script really asks of
rustup and cargo, and what it moves where, is then a recorded fact rather than a
reading of shell text.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.analysis import dockerfile as dfm
from harness.analysis import environment
from harness.analysis.dockerfile import Dockerfile, RunStep, Stage
from harness.errors import EnvironmentProblem
from harness.knobs import INSTALL_DIR
from harness.proc import run

log = logging.getLogger("harness")

# The literal destination prefix of the move step, redirected into a temporary
# directory for execution (the only change made to the script text).
INSTALL_PREFIX = INSTALL_DIR

DOUBLES_DIR = Path(__file__).parent / "doubles"
_DOUBLE_SCRIPT = DOUBLES_DIR / "tool_double.sh"
_DOUBLED_TOOLS = ("cargo", "rustup")
# Variables set to run the script and the doubles, not part of what BuildKit gives it.
_HARNESS_VARS = frozenset({"HARNESS_DOUBLE_LOG", "PATH", "PWD", "OLDPWD", "SHLVL", "_"})


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
        return [t for c in self.cargo_builds for t in option_values(c.argv, "--target")]

    @property
    def rustup_targets(self) -> list[str]:
        """Targets passed to `rustup target add|install` (options and their values left out)."""
        found = []
        for c in self.calls:
            if c.tool == "rustup" and c.argv[:1] == ("target",) and c.argv[1:2] in (("add",), ("install",)):
                found.extend(_positionals(c.argv[2:], takes_value={"--toolchain"}))
        return found


def option_values(argv: Sequence[str], option: str) -> list[str]:
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


def _shell() -> str:
    # BuildKit runs RUN scripts with the image's /bin/sh, which is dash in the
    # Debian rust images; bash would accept things dash rejects.
    return shutil.which("dash") or "/bin/sh"


def write_doubles(bin_dir: Path) -> Path:
    """Write the cargo/rustup doubles into `bin_dir` (created) and return it.

    Runs in parallel threads must share doubles written before the threads
    start: a double still open for writing in one thread is inherited by a
    child another thread forks, and exec'ing it then fails with ETXTBSY.
    """
    bin_dir.mkdir(parents=True)
    script = _DOUBLE_SCRIPT.read_bytes()
    for tool in _DOUBLED_TOOLS:
        double = bin_dir / tool  # the double reads which tool it stands for from its own name
        double.write_bytes(script)
        double.chmod(0o755)
    return bin_dir


def read_calls(log_file: Path) -> tuple[ToolCall, ...]:
    """The calls the doubles recorded, in order (the record format is described in doubles/tool_double.sh)."""
    if not log_file.exists():
        return ()
    fields = log_file.read_bytes().split(b"\0")
    calls = []
    at = 0
    while at < len(fields) - 1:  # the last field is what follows the final NUL: nothing
        tool, count = fields[at].decode(), int(fields[at + 1])
        argv = tuple(arg.decode(errors="replace") for arg in fields[at + 2 : at + 2 + count])
        exported = fields[at + 2 + count].decode(errors="replace")
        at += 3 + count
        calls.append(ToolCall(tool=tool, argv=argv, env=_exported(exported)))
    return tuple(calls)


def _exported(listing: str) -> dict[str, str]:
    """NAME -> value from `export -p` (dash: `export NAME='value'`; bash: `declare -x NAME="value"`), the
    variables set to run the script and its doubles left out."""
    env = {}
    for word in shlex.split(listing):
        name, equals, value = word.partition("=")
        if equals and name not in _HARNESS_VARS:
            env[name] = value
    return env


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
        call_log = root / "calls"
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
            env = environment.environment_at(df, stage, step.start_line, build_args, targetarch=targetarch)
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
        calls = read_calls(call_log)
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


def _copy_sources(df: Dockerfile, root: Path, *, targetarch: str) -> list[CopySource]:
    found = []
    for stage in df.stages:
        for copy in stage.copies_from:
            if copy.source_stage.lower() != "builder":
                continue
            env = environment.environment_at(df, stage, copy.line, {}, targetarch=targetarch)
            for source in copy.sources:
                path = environment.expand(source, env)
                local = root / path.lstrip("/")
                content = local.read_text(errors="replace") if local.is_file() else None
                found.append(CopySource(line=copy.line, path=path, content=content))
    return found
