"""Run a Dockerfile's build RUN scripts under `sh`, with test doubles for cargo and rustup, and record what they do.

The builder stage's cargo build RUN (and, as v0.14 had them, its later move steps)
runs in the environment BuildKit would give it, with test-double `cargo` and
`rustup` first on PATH (harness/analysis/doubles/): what the script really asks of
rustup and cargo, and what it moves where, is then a recorded fact rather than a
reading of shell text. The script is upstream's text, so it runs confined
(harness.analysis.confine), and what it leaves behind is read without following
a link it may have planted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.analysis import dockerfile as dfm
from harness.analysis import environment
from harness.analysis.confine import FILE_SIZE_LIMIT, Confinement
from harness.analysis.dockerfile import Dockerfile, RunStep, Stage
from harness.errors import BadInput, EnvironmentProblem
from harness.files import read_in_tree
from harness.knobs import BUILDER_STAGE, INSTALL_DIR

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
    stopped: str | None = None
    """Why the harness stopped that RUN (a time, CPU or file-size limit), None when it ended by itself."""

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


@dataclass(frozen=True, kw_only=True)
class Sandbox:
    """Where build scripts run: confined as `confinement` says, with the doubles written once in `doubles`."""

    confinement: Confinement
    doubles: Path


@contextlib.contextmanager
def open_sandbox(confinement: Confinement) -> Iterator[Sandbox]:
    """A sandbox for any number of script runs, in parallel threads too (the doubles are written before any starts)."""
    with tempfile.TemporaryDirectory(prefix="mas-doubles-") as tmp:
        yield Sandbox(confinement=confinement, doubles=write_doubles(Path(tmp) / "bin"))


def read_calls(log_file: Path) -> tuple[ToolCall, ...]:
    """The calls the doubles recorded, in order (the record format is described in doubles/tool_double.sh)."""
    data = _output_bytes(log_file.parent, log_file.name)
    if not data:
        return ()
    fields = data.split(b"\0")
    calls = []
    at = 0
    while at < len(fields) - 1:  # the last field is what follows the final NUL: nothing
        try:
            tool, count = fields[at].decode(), int(fields[at + 1])
        except (UnicodeDecodeError, ValueError, IndexError):
            break  # the script wrote into the log itself: what came before is still the doubles' own
        if at + 2 + count >= len(fields):
            break
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


_SYSTEM_TEMP = ("/tmp", "/var/tmp", "/dev/shm")
"""Where an unconfined script's scratch directory goes when the temporary directory's path is not a shell word."""


def _is_shell_word(text: str) -> bool:
    return all(ch.isalnum() or ch in "/._-" for ch in text)


def _shell_safe_path(text: str) -> str:
    # The path is pasted into the script unquoted (in place of /usr/local/bin/).
    if not _is_shell_word(text):
        raise EnvironmentProblem(f"temporary directory `{text}` has characters unsafe in a shell word; set TMPDIR")
    return text


def _scratch_base(confinement: Confinement) -> str | None:
    """The directory to make a script's scratch directory in (None: the temporary directory).

    A confined script sees its scratch directory as /scratch, whatever TMPDIR is. One run
    unconfined sees the real path, pasted into its text: a TMPDIR with a space in it
    (`/tmp/my dir`) would split the words, so the scratch directory then goes to a system
    temporary directory whose path is one word.
    """
    default = tempfile.gettempdir()
    if confinement.confined or _is_shell_word(default):
        return None
    for base in _SYSTEM_TEMP:
        if Path(base).is_dir() and os.access(base, os.W_OK | os.X_OK):
            return base
    return default  # refused below, naming it


def _output_bytes(root: Path, name: str, *, limit: int = FILE_SIZE_LIMIT) -> bytes | None:
    """A regular file the script left under `root`, never through a link it planted; None for anything else."""
    try:
        return read_in_tree(root, name, limit=limit)
    except BadInput:
        return None


def _regular_files(base: Path) -> list[str]:
    """Regular files under `base`, relative to its parent, walked without following links (a script may plant one
    to make the harness list a directory of the host)."""
    if not base.is_dir() or base.is_symlink():
        return []
    found = []
    for directory, _, files in os.walk(base, followlinks=False):
        for name in files:
            path = Path(directory) / name
            if stat.S_ISREG(path.lstat().st_mode):
                found.append(str(path.relative_to(base.parent)))
    return found


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

    def _through_link(self, relative: str) -> bool:
        # The script may have planted a link where the mount goes: moving directories through it would write
        # outside the scratch directory.
        path = self.app
        for part in Path(relative).parts:
            path = path / part
            if path.is_symlink():
                return True
        return False

    def mount(self, relative: str, stash: Path) -> None:
        if self._through_link(relative):
            return
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
        if self._through_link(relative) or not (self.app / relative).exists():
            return
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
    sandbox: Sandbox,
    workdir_files: Sequence[str] = (),
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
    Each script runs in `sandbox`, as its confinement says (the caller has
    checked that it is available).
    """
    stage = df.builder
    build_run = dfm.find_build_run(stage)
    steps = [build_run, *move_steps(stage, build_run)]
    with tempfile.TemporaryDirectory(prefix="mas-build-script-", dir=_scratch_base(sandbox.confinement)) as tmp:
        root = Path(tmp)
        app, dest = root / "app", root / "usr" / "local" / "bin"
        scratch = root / "scratch"
        app, dest = scratch / "app", scratch / "usr" / "local" / "bin"
        confinement, bin_dir = sandbox.confinement, sandbox.doubles
        app.mkdir(parents=True)
        dest.mkdir(parents=True)
        for name in workdir_files:
            (app / name).touch()
        before = set(workdir_files)
        call_log = scratch / "calls"
        caches = _CacheMounts(app=app, store=root / "cache-mounts")
        prefix = _shell_safe_path(confinement.path_of(scratch, scratch=scratch)) + INSTALL_PREFIX
        returncode, stderr, failed_line, stopped = 0, [], None, None
        for step in steps:
            workdir = dfm.workdir_at(stage, step.start_line)
            mounted = [
                rel
                for target in dfm.cache_mount_targets(step)
                if (rel := dfm.relative_to_workdir(target, workdir)) is not None
            ]
            for index, rel in enumerate(mounted):
                caches.mount(rel, root / "layer-stash" / str(index))
            env = {
                "PATH": f"{confinement.doubles_dir(bin_dir)}:/usr/bin:/bin",
                "HARNESS_DOUBLE_LOG": confinement.path_of(call_log, scratch=scratch),
                **environment.environment_at(df, stage, step.start_line, build_args, targetarch=targetarch),
            }
            script = step.script.replace(INSTALL_PREFIX, prefix)
            log.debug(
                "running the RUN at line %d (%s), %s rewritten to %s",
                step.start_line,
                confinement.backend,
                INSTALL_PREFIX,
                prefix,
            )
            confinement.prepare(scratch, bin_dir)
            done = confinement.run(script, env=env, scratch=scratch, doubles=bin_dir, cwd=app)
            for index, rel in enumerate(mounted):
                caches.unmount(rel, root / "layer-stash" / str(index))
            stderr.append(done.stderr)
            if done.returncode != 0 or done.stopped is not None:
                returncode, failed_line, stopped = done.returncode, step.start_line, done.stopped
                break
        calls = read_calls(call_log)
        installed = {
            p.name: (_output_bytes(dest, p.name) or b"").decode(errors="replace") for p in sorted(dest.iterdir())
        }
        # Copied rather than moved: still in target/, in the layer or in its cache mount.
        left = tuple(sorted(name for base in (app, caches.store) for name in _regular_files(base / "target")))
        new = tuple(sorted(p.name for p in app.iterdir() if p.name not in before and p.name != "target"))
        copies = tuple(_copy_sources(df, scratch, targetarch=targetarch))
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
        stopped=stopped,
    )


def _copy_sources(df: Dockerfile, root: Path, *, targetarch: str) -> list[CopySource]:
    found = []
    for stage in df.stages:
        for copy in stage.copies_from:
            if copy.source_stage.lower() != BUILDER_STAGE:
                continue
            env = environment.environment_at(df, stage, copy.line, {}, targetarch=targetarch)
            for source in copy.sources:
                path = environment.expand(source, env)
                data = _output_bytes(root, path.lstrip("/"))  # None too for `..`: nothing the stage can have made
                content = None if data is None else data.decode(errors="replace")
                found.append(CopySource(line=copy.line, path=path, content=content))
    return found
