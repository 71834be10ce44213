"""A second, BuildKit-capable Docker engine for the integration tier: the test engine `build --builder` runs on.

It shares nothing with the machine's own engine (the first engine, which every user of the machine
shares): its own `dockerd` from the same Debian packages, its own data root, exec root, pid file and
unix socket under a temporary directory, started in a network namespace of its own. In the host's
network namespace a second dockerd deletes the first engine's `docker0` bridge at start-up and the
first engine's builds then lose their network (see /work/shared/notes/docker-engine-on-debian12.md).
The namespace reaches the network through slirp4netns (user-mode networking: nothing of the host's
interfaces, routes or firewall is touched), which upstream's builder stage needs for
`cargo install cargo-auditable` and `apt-get`.

The engine is registered as a docker context of the same name, which gives it a buildx builder of the
docker driver (used as `docker --context NAME buildx build`). Starting is idempotent: a name already
registered is the same engine, reused while it answers, and what an earlier, killed run of the tier
left behind (a context whose engine no longer answers) is removed first.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import DockerClient, DockerException, docker

from harness.build.rootfs import remove_tree

NAME_PREFIX = "mas-harness-test-engine-"
"""Every second engine's context and builder name starts so; what the tier made, and only that, is removed."""
TOOLS = ("dockerd", "unshare", "slirp4netns")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class SecondEngineUnavailable(Exception):
    """The machine cannot run a second engine (a tool is missing, or the engine did not come up)."""


@dataclass(frozen=True, kw_only=True)
class SecondTestEngine:
    """A running second engine: its name (docker context and buildx builder), its directory and socket."""

    name: str
    root: Path

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def client(self) -> DockerClient:
        """The engine through its docker context, as the harness reaches it."""
        return DockerClient(context=self.name)

    def pid(self, which: str) -> int | None:
        try:
            return int((self.root / f"{which}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def answers(self) -> bool:
        return _answers(self.host)


def _answers(host: str) -> bool:
    probe = subprocess.run(["docker", "-H", host, "info", "--format", "{{.ID}}"], capture_output=True, check=False)
    return probe.returncode == 0


def _netns(pid: int | str) -> str:
    return str(Path(f"/proc/{pid}/ns/net").readlink())


def _context_host(name: str) -> str | None:
    try:
        endpoint = docker.context.inspect(name).endpoints.get("docker")
    except DockerException:
        return None
    return endpoint.host if endpoint else None


def _stale_contexts() -> Iterator[str]:
    """Second engines' contexts whose engine is gone: a run of the tier was killed before its cleanup."""
    for context in docker.context.list():
        if not context.name.startswith(NAME_PREFIX):
            continue
        host = _context_host(context.name)
        if host is None or not _answers(host):
            yield context.name


def remove_stale_engines() -> list[str]:
    removed = []
    for name in _stale_contexts():
        subprocess.run(["docker", "context", "rm", "--force", name], capture_output=True, check=False)
        removed.append(name)
    return removed


def start_second_engine(
    *, name: str | None = None, images: Iterable[str] = (), config: Mapping[str, object] | None = None
) -> SecondTestEngine:
    """Start (or reuse, by name) a second engine and load `images` from the first engine into it; `config` is its
    daemon.json (e.g. containerd's image store, with which its builder exports images)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise SecondEngineUnavailable(
            f"{', '.join(missing)} not on PATH (scripts/run.sh installs slirp4netns; the engine installer dockerd)"
        )
    remove_stale_engines()
    name = name or f"{NAME_PREFIX}{uuid.uuid4().hex[:8]}"
    host = _context_host(name)
    if host is not None and host.startswith("unix://") and _answers(host):
        engine = SecondTestEngine(name=name, root=Path(host.removeprefix("unix://")).parent)
    else:
        engine = _start(name, config or {})
    try:
        load_images(engine, images)
    except BaseException:
        stop_second_engine(engine)
        raise
    return engine


def _start(name: str, config: Mapping[str, object]) -> SecondTestEngine:
    # Short, under /tmp: the engine's and containerd's unix sockets live below it (108 bytes at most).
    engine = SecondTestEngine(name=name, root=Path(tempfile.mkdtemp(prefix=NAME_PREFIX)))
    root = engine.root
    # Its own configuration file, so that the machine's /etc/docker/daemon.json (the first engine's) is not read.
    (root / "daemon.json").write_text(json.dumps(config))
    log = (root / "dockerd.log").open("wb")
    daemon = subprocess.Popen(
        [
            "unshare",
            "--net",
            "--fork",
            "--kill-child",
            "--",
            "dockerd",
            f"--data-root={root / 'data'}",
            f"--exec-root={root / 'exec'}",
            f"--pidfile={root / 'dockerd.pid'}",
            f"--config-file={root / 'daemon.json'}",
            f"--host={engine.host}",
            # Its containers' cgroups apart from the first engine's (`docker`), named as what made them.
            f"--cgroup-parent={name}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (root / "unshare.pid").write_text(f"{daemon.pid}\n")
    try:
        _wire_network(engine, daemon)
        _wait_until_up(engine, daemon)
        subprocess.run(
            [
                "docker",
                "context",
                "create",
                name,
                "--description",
                "mas-harness integration tier: second test engine",
                "--docker",
                f"host={engine.host}",
            ],
            capture_output=True,
            check=True,
        )
    except BaseException:
        stop_second_engine(engine)
        raise
    return engine


def _wire_network(engine: SecondTestEngine, daemon: subprocess.Popen[bytes]) -> None:
    """slirp4netns into the daemon's namespace, once it is one: attached to the host's, it would configure the
    host's own network (a tap device, a default route)."""
    own = _netns("self")
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if daemon.poll() is not None:
            raise SecondEngineUnavailable(f"unshare/dockerd exited {daemon.returncode}: {_log_tail(engine)}")
        with contextlib.suppress(OSError):
            if _netns(daemon.pid) != own:
                break
        if time.monotonic() > deadline:
            raise SecondEngineUnavailable("unshare --net did not make a network namespace")
        time.sleep(0.05)
    slirp = subprocess.Popen(
        ["slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback", str(daemon.pid), "tap0"],
        stdin=subprocess.DEVNULL,
        stdout=(engine.root / "slirp4netns.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (engine.root / "slirp4netns.pid").write_text(f"{slirp.pid}\n")


def _wait_until_up(engine: SecondTestEngine, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not engine.answers():
        if daemon.poll() is not None:
            raise SecondEngineUnavailable(f"the second dockerd exited {daemon.returncode}: {_log_tail(engine)}")
        if time.monotonic() > deadline:
            raise SecondEngineUnavailable(f"the second dockerd did not answer in {START_TIMEOUT:.0f}s")
        time.sleep(0.2)


def _log_tail(engine: SecondTestEngine) -> str:
    try:
        lines = (engine.root / "dockerd.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no log"


def load_images(engine: SecondTestEngine, images: Iterable[str]) -> None:
    """`docker save` from the first engine into `docker load` of the second, for each image it lacks."""
    for tag in images:
        if engine.client.image.exists(tag):
            continue
        with subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE) as save:
            loaded = subprocess.run(
                ["docker", "--context", engine.name, "load", "--quiet"],
                stdin=save.stdout,
                capture_output=True,
                check=False,
            )
        if save.returncode != 0 or loaded.returncode != 0:
            raise SecondEngineUnavailable(f"could not load {tag} into {engine.name}: {loaded.stderr.decode().strip()}")


def _signal(pid: int | None, sig: signal.Signals) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pid: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid is not None and Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def stop_second_engine(engine: SecondTestEngine) -> None:
    """Remove the context (and with it the builder), stop the daemon and its network, unmount and remove its root."""
    subprocess.run(["docker", "context", "rm", "--force", engine.name], capture_output=True, check=False)
    dockerd, holder = engine.pid("dockerd"), engine.pid("unshare")
    # dockerd stops its containers and its containerd and unmounts its layers on SIGTERM.
    _signal(dockerd, signal.SIGTERM)
    if not _wait_gone(dockerd, STOP_TIMEOUT):
        _signal(dockerd, signal.SIGKILL)
        _wait_gone(dockerd, STOP_TIMEOUT)
    _signal(holder, signal.SIGTERM)
    _wait_gone(holder, STOP_TIMEOUT)
    _signal(engine.pid("slirp4netns"), signal.SIGTERM)
    _wait_gone(engine.pid("slirp4netns"), STOP_TIMEOUT)
    # Whatever a killed daemon left mounted under its root is unmounted before anything is deleted.
    remove_tree(engine.root)


def mounts_under(root: Path) -> list[str]:
    """Mount points below `root` in this mount namespace (none once the engine is stopped)."""
    resolved = str(root.resolve())
    return [
        line.split(" ")[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split(" ")[4].startswith(resolved)
    ]
