"""Run a shell script taken from upstream's Dockerfile confined, as BuildKit would: never with the user's powers.

The static checks execute the builder stage's build RUN (with test-double cargo and rustup) to
record what it asks for. That text comes from whatever ref the user checks, a pull request's
branch included, and the commands run in CI next to the repository's credentials. So the
script runs:

- with no network (a network namespace of its own, holding only a down loopback);
- seeing a read-only root made of the host's `/usr` (and the `/bin`, `/lib` links into it), a
  private `/proc` and `/dev` (null, zero, full, random, urandom), the test doubles read-only at
  `/doubles`, and one writable directory, the run's scratch directory, at `/scratch` (with
  `/tmp` inside it): no home, no `/etc`, no checkout, no credentials;
- not as root: when the harness runs as root, as uid 65534 (`nobody`, who owns nothing) of the
  host; else as the invoking user; either way as uid 1000 of a user namespace of its own (or, with
  `unshare` as root, after every capability is dropped), with no capabilities;
- in a PID namespace of its own, so nothing it starts outlives it, and with limits: a time limit
  (the whole namespace is killed at it), a process limit, an address-space limit per process,
  a file-size limit and no core files.

What a Linux host offers without Docker does this: bubblewrap (`bwrap`) or util-linux's `unshare`,
whichever is present and allowed (some CI kernels forbid unprivileged user namespaces). When
neither works, `Confinement.unavailable` says why and what to do, and the execution-based
findings are reported as not run; `--unconfined` runs the scripts on the host as the user.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.human import duration_text

log = logging.getLogger("harness")

TIME_LIMIT = 20.0
"""Seconds one build script may run. With test doubles a real one takes milliseconds."""
PROCESS_LIMIT = 64
"""Processes the script may have at once (RLIMIT_NPROC inside its namespace): a fork bomb stops here."""
MEMORY_LIMIT = 512 * 1024 * 1024
"""Address space per process (RLIMIT_AS)."""
FILE_SIZE_LIMIT = 16 * 1024 * 1024
"""The largest file the script may write (RLIMIT_FSIZE); its output is bounded by the same limit."""
OUTPUT_LIMIT = 1024 * 1024
"""Bytes of the script's stderr the harness reads back."""

SCRATCH = PurePosixPath("/scratch")
"""Where the scratch directory appears to a confined script."""
DOUBLES = PurePosixPath("/doubles")
"""Where the test doubles appear to a confined script."""
SANDBOX_UID = 65534
"""Who a confined script runs as when the harness runs as root: `nobody`, who owns nothing."""
_NAMESPACE_UID = 1000
"""Who it runs as inside a user namespace of its own (mapped to the invoking user)."""
_DEVICES = ("null", "zero", "full", "random", "urandom")
_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

UNCONFINED_REMEDY = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap), or allow unprivileged user namespaces, "
    "or pass --unconfined to run upstream's build script on this machine as you"
)


class Backend(enum.StrEnum):
    BWRAP = "bwrap"
    UNSHARE = "unshare"
    UNCONFINED = "unconfined"
    """Asked for with --unconfined: the script runs on the host, as the user."""


@dataclass(frozen=True, kw_only=True)
class ScriptExit:
    returncode: int
    stderr: str
    stopped: str | None = None
    """Why the harness stopped the script before it ended (a limit), None when it ended by itself."""


@dataclass(frozen=True, kw_only=True)
class Confinement:
    """How this run executes upstream's scripts; resolved once per run by `detect`."""

    backend: Backend | None
    """None: no way to confine them here; see `unavailable`."""
    unavailable: str = ""
    """Why scripts cannot be run confined, with the remedy (empty when they can)."""
    as_root: bool = False
    """The harness runs as root: bwrap is started as SANDBOX_UID; with `unshare` the mounts are made as root,
    then the script drops to SANDBOX_UID. Either way the scratch directory is handed to that user."""
    time_limit: float = TIME_LIMIT

    @property
    def available(self) -> bool:
        return self.backend is not None

    @property
    def confined(self) -> bool:
        return self.backend not in (None, Backend.UNCONFINED)

    def describe(self) -> str:
        if self.backend is None:
            return f"not run: {self.unavailable}"
        if self.backend is Backend.UNCONFINED:
            return "run unconfined on this machine (--unconfined)"
        return f"confined with {self.backend} (no network, read-only root, limits)"

    def path_of(self, host: Path, *, scratch: Path) -> str:
        """`host`, a path under the scratch directory, as the script sees it."""
        if not self.confined:
            return str(host)
        return str(SCRATCH / host.relative_to(scratch))

    def doubles_dir(self, host: Path) -> str:
        return str(DOUBLES) if self.confined else str(host)

    def prepare(self, scratch: Path, doubles: Path) -> None:
        """Make the scratch directory the script's to write and the doubles readable by it (as root: by nobody)."""
        (scratch / "tmp").mkdir(exist_ok=True)
        if self.confined and self.as_root:
            for walked, _, files in os.walk(scratch):
                os.chown(walked, SANDBOX_UID, SANDBOX_UID)
                for name in files:
                    os.chown(Path(walked) / name, SANDBOX_UID, SANDBOX_UID)
            # Directories of ours that nobody must reach: to bind them (bwrap), or read through the binds.
            for directory in (scratch.parent, doubles.parent, doubles):
                directory.chmod(0o755)

    def run(
        self,
        script: str,
        *,
        env: Mapping[str, str],
        scratch: Path,
        doubles: Path,
        cwd: Path,
    ) -> ScriptExit:
        """Run `script` under dash with exactly `env` (paths in it already as the script sees them)."""
        if self.backend is None:
            raise RuntimeError("Confinement.run called where no confinement is available")
        argv = self.command(script, env=env, scratch=scratch, doubles=doubles, cwd=cwd)
        as_nobody = self.backend is Backend.BWRAP and self.as_root
        return _run_bounded(argv, cwd=cwd if not self.confined else None, limit=self.time_limit, as_nobody=as_nobody)

    def command(self, script: str, *, env: Mapping[str, str], scratch: Path, doubles: Path, cwd: Path) -> list[str]:
        """The command line that runs `script` this way (run by `run`, with its limits and output kept apart)."""
        shell = shutil.which("dash") or "/bin/sh"
        environment = [f"{key}={value}" for key, value in env.items()]
        if self.backend is Backend.UNCONFINED:
            return ["env", "-i", *environment, shell, "-c", script]
        inside_cwd = self.path_of(cwd, scratch=scratch)
        limited = [
            _tool("prlimit"),
            *_limits(self.time_limit),
            "--",
            _tool("env"),
            "-i",
            *environment,
            shell,
            "-c",
            script,
        ]
        if self.backend is Backend.BWRAP:
            return _bwrap_argv(limited, scratch=scratch, doubles=doubles, cwd=inside_cwd)
        return _unshare_argv(limited, scratch=scratch, doubles=doubles, cwd=inside_cwd, as_root=self.as_root)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(name)
    return found


def _limits(time_limit: float) -> list[str]:
    return [
        f"--nproc={PROCESS_LIMIT}",
        f"--as={MEMORY_LIMIT}",
        f"--fsize={FILE_SIZE_LIMIT}",
        f"--cpu={int(time_limit) + 1}",
        "--core=0",
    ]


def _root_links() -> list[tuple[str, str | None]]:
    """The host's top-level library and binary directories: (name, link target or None for a real directory)."""
    found: list[tuple[str, str | None]] = []
    for name in _ROOT_LINKS:
        path = Path("/") / name
        if path.is_symlink():
            found.append((name, str(path.readlink())))
        elif path.is_dir():
            found.append((name, None))
    return found


def _bwrap_argv(command: Sequence[str], *, scratch: Path, doubles: Path, cwd: str) -> list[str]:
    argv = [_tool("bwrap"), "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for name, link in _root_links():
        argv += ["--symlink", link, f"/{name}"] if link is not None else ["--ro-bind", f"/{name}", f"/{name}"]
    argv += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--bind",
        str(scratch),
        str(SCRATCH),
        "--bind",
        str(scratch / "tmp"),
        "/tmp",
        "--ro-bind",
        str(doubles),
        str(DOUBLES),
        "--uid",
        str(_NAMESPACE_UID),
        "--gid",
        str(_NAMESPACE_UID),
        "--cap-drop",
        "ALL",
        "--remount-ro",
        "/",
        "--chdir",
        cwd,
        "--clearenv",
        "--",
        *command,
    ]
    return argv


# Run as (namespace) root inside fresh mount, network, PID, IPC and UTS namespaces: build the new root, pivot
# into it, then start the script without privileges. Arguments: the new root's mount point, the scratch and
# doubles directories, the script's working directory, the drop command, then the limited command.
_SETUP = r"""
set -eu
new=$1 scratch=$2 doubles=$3 cwd=$4 links=$5
shift 5
mount -t tmpfs -o size=1m,mode=0755 mas-harness-sandbox "$new"
mkdir "$new/usr" "$new/proc" "$new/dev" "$new/scratch" "$new/doubles" "$new/tmp" "$new/.old"
mount --bind /usr "$new/usr"
mount -o remount,bind,ro,nosuid,nodev "$new/usr"
for entry in $links; do
  name=${entry%%=*} target=${entry#*=}
  if [ -n "$target" ]; then
    ln -s "$target" "$new/$name"
  else
    mkdir "$new/$name"
    mount --bind "/$name" "$new/$name"
    mount -o remount,bind,ro,nosuid,nodev "$new/$name"
  fi
done
mount --bind "$scratch" "$new/scratch"
mount -o remount,bind,nosuid,nodev "$new/scratch"
mount --bind "$scratch/tmp" "$new/tmp"
mount -o remount,bind,nosuid,nodev "$new/tmp"
mount --bind "$doubles" "$new/doubles"
mount -o remount,bind,ro,nosuid,nodev "$new/doubles"
for device in null zero full random urandom; do
  : >"$new/dev/$device"
  mount --bind "/dev/$device" "$new/dev/$device"
done
mount -t proc -o nosuid,nodev,noexec proc "$new/proc"
cd "$new"
pivot_root . .old
umount -l /.old
mount -o remount,bind,ro /
cd "$cwd"
exec "$@"
"""


def _unshare_argv(command: Sequence[str], *, scratch: Path, doubles: Path, cwd: str, as_root: bool) -> list[str]:
    namespaces = ["--mount", "--net", "--pid", "--fork", "--kill-child", "--ipc", "--uts"]
    if as_root:
        # Mounts as the real root (who can reach any path), then nobody with no capability left.
        drop = [
            _tool("setpriv"),
            f"--reuid={SANDBOX_UID}",
            f"--regid={SANDBOX_UID}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
        outer = [_tool("unshare"), *namespaces]
    else:
        # A user namespace of our own for the mounts; a nested one, mapping one unprivileged user, for the script.
        drop = [_tool("unshare"), "--user", f"--map-user={_NAMESPACE_UID}", f"--map-group={_NAMESPACE_UID}", "--"]
        outer = [_tool("unshare"), "--user", "--map-root-user", *namespaces]
    links = " ".join(f"{name}={link or ''}" for name, link in _root_links())
    mount_point = scratch.parent / f"{scratch.name}.root"
    mount_point.mkdir(exist_ok=True)
    return [
        *outer,
        "--",
        shutil.which("sh") or "/bin/sh",
        "-c",
        _SETUP,
        "mas-harness-sandbox",
        str(mount_point),
        str(scratch),
        str(doubles),
        cwd,
        links,
        *drop,
        *command,
    ]


def _run_bounded(argv: Sequence[str], *, cwd: Path | None, limit: float, as_nobody: bool) -> ScriptExit:
    """Run with output to files (a script that prints forever fills no pipe) and kill its whole group at `limit`."""
    log.debug("+ %s", " ".join(argv[:3]) + " …")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(  # list arguments, no shell of ours; as nobody, bwrap sees only what nobody may
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            start_new_session=True,
            user=SANDBOX_UID if as_nobody else None,
            group=SANDBOX_UID if as_nobody else None,
            extra_groups=() if as_nobody else None,
        )
        stopped = None
        try:
            returncode = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            stopped = f"stopped after {duration_text(limit)}, the time limit for a build script run with test doubles"
            namespace_inits = _children(proc.pid)
            _kill_group(proc)
            returncode = proc.wait()
            _await_exit(namespace_inits)
        err.seek(0)
        stderr = err.read(OUTPUT_LIMIT).decode(errors="replace")
    if stopped is None and returncode < 0 and -returncode in (signal.SIGXCPU, signal.SIGXFSZ):
        stopped = f"stopped by {signal.Signals(-returncode).name}: it went past the CPU-time or file-size limit"
    return ScriptExit(returncode=returncode, stderr=stderr, stopped=stopped)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The confined script's own processes die with its PID namespace when the outer process goes; an
    # unconfined one's children are in this process group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    """The direct children of `pid`: for bwrap and `unshare --fork`, the init of the script's PID namespace."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _await_exit(pids: Sequence[int], *, bound: float = 10.0) -> None:
    """Return once each of `pids` has exited (a zombie or gone), or after `bound` seconds.

    The kernel kills a PID namespace's processes when its init dies, but the init's parent returns from
    wait() before they are gone; the init itself becomes a zombie only after every one of them has
    exited, so waiting for it means nothing the script started is still running when the check returns.
    """
    deadline = time.monotonic() + bound
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
            except (OSError, IndexError):
                break
            if state in ("Z", "X"):
                break
            time.sleep(0.01)


Prober = Callable[[Confinement], str | None]


def _probe(candidate: Confinement) -> str | None:
    """None when `candidate` runs a script here, else why not (one line)."""
    with tempfile.TemporaryDirectory(prefix="mas-confine-probe-") as tmp:
        scratch, doubles = Path(tmp) / "scratch", Path(tmp) / "doubles"
        scratch.mkdir()
        doubles.mkdir()
        try:
            candidate.prepare(scratch, doubles)
            done = candidate.run(
                ": >probe", env={"PATH": "/usr/bin:/bin"}, scratch=scratch, doubles=doubles, cwd=scratch
            )
        except (OSError, FileNotFoundError) as exc:
            return f"{candidate.backend}: {exc}"
        if done.returncode != 0 or not (scratch / "probe").is_file():
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            return f"{candidate.backend}: {lines[-1] if lines else f'exit {done.returncode}'}"
    return None


def detect(*, unconfined: bool = False, prefer: Sequence[Backend] | None = None, probe: Prober = _probe) -> Confinement:
    """The first way of confining scripts that works on this machine, or why there is none.

    Tried in order: `bwrap` (allowed on hosts that restrict user namespaces to it; as root, started as
    nobody), then `unshare` (as root: mounts as root, then nobody; else with a user namespace of its own).
    """
    if unconfined:
        return Confinement(backend=Backend.UNCONFINED)
    as_root = os.geteuid() == 0
    order = prefer or (Backend.BWRAP, Backend.UNSHARE)
    reasons = []
    for backend in order:
        needed = ("unshare", "setpriv", "prlimit") if backend is Backend.UNSHARE else ("bwrap", "prlimit")
        missing = [tool for tool in needed if shutil.which(tool) is None]
        if missing:
            reasons.append(f"{backend}: {', '.join(missing)} not installed")
            continue
        candidate = Confinement(backend=backend, as_root=as_root)
        why = probe(candidate)
        if why is None:
            return candidate
        reasons.append(why)
    return Confinement(
        backend=None,
        as_root=as_root,
        unavailable=f"upstream's build script cannot be run confined here ({'; '.join(reasons)}): {UNCONFINED_REMEDY}",
    )
