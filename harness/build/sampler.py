"""Sample rustc and cargo processes of a build from the host.

A BuildKit RUN's processes live in the host's process table, so psutil sees
them without entering the container. Only the source tree's build counts: a
process counts when its working directory is the build's source root or one of
its arguments names a path under it (rustc of a registry dependency runs in the
registry but writes to `/app/target`), so the stage's own `cargo install
cargo-auditable`, which runs at its own parallelism in /tmp, is left out.

Process RSS misses what the linker and the build script children hold, so the
memory cgroups of those processes (BuildKit gives each RUN its own) are read too,
under cgroup v1 or v2, wherever the host exposes them. A cgroup's usage counts
page cache as well; its anonymous memory is what cannot be reclaimed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from types import TracebackType

import psutil

from harness.knobs import SAMPLE_INTERVAL

_WATCHED = ("rustc", "cargo")
_FLAGS = ("codegen-units", "lto")


@dataclass(frozen=True, kw_only=True)
class Sample:
    t: float
    """Seconds since sampling started."""
    rss_bytes: int
    rustc: int
    cargo: int
    cgroup_bytes: int | None = None
    """Memory usage of the build's cgroups (page cache included), None where not readable."""
    cgroup_anon_bytes: int | None = None
    """Their anonymous (RSS-like) memory."""
    cgroup_peak_bytes: int | None = None
    """The kernel's own high-water mark of those cgroups, which catches peaks between samples."""


@dataclass(frozen=True, kw_only=True)
class Figures:
    """What one profile's build cost, read off its samples."""

    peak_rss_bytes: int
    """Summed RSS of the source tree's rustc and cargo processes, highest sample."""
    peak_rss_t: float | None
    peak_cgroup_bytes: int | None
    """The build containers' memory cgroups: the kernel's high-water mark, or the highest sample."""
    peak_cgroup_t: float | None
    peak_cgroup_anon_bytes: int | None
    """Their anonymous memory, highest sample: RSS-like, without the page cache the usage also counts."""
    peak_cgroup_anon_t: float | None
    max_concurrent_rustc: int
    compile_seconds: float
    sample_count: int


def figures(samples: Sequence[Sample]) -> Figures:
    peak = max(samples, key=lambda s: s.rss_bytes, default=None)
    cgroup = [s for s in samples if s.cgroup_bytes is not None or s.cgroup_peak_bytes is not None]

    def cgroup_high(sample: Sample) -> int:
        return max(sample.cgroup_bytes or 0, sample.cgroup_peak_bytes or 0)

    cgroup_peak = max(cgroup, key=cgroup_high, default=None)
    anon_peak = max(
        (s for s in samples if s.cgroup_anon_bytes is not None), key=lambda s: s.cgroup_anon_bytes or 0, default=None
    )
    busy = [s.t for s in samples if s.rustc or s.cargo]
    return Figures(
        peak_rss_bytes=peak.rss_bytes if peak else 0,
        peak_rss_t=peak.t if peak else None,
        peak_cgroup_bytes=cgroup_high(cgroup_peak) if cgroup_peak else None,
        peak_cgroup_t=cgroup_peak.t if cgroup_peak else None,
        peak_cgroup_anon_bytes=anon_peak.cgroup_anon_bytes if anon_peak else None,
        peak_cgroup_anon_t=anon_peak.t if anon_peak else None,
        max_concurrent_rustc=max((s.rustc for s in samples), default=0),
        compile_seconds=round(busy[-1] - busy[0], 3) if busy else 0.0,
        sample_count=len(samples),
    )


@dataclass(frozen=True, kw_only=True)
class SamplerReport:
    peak_rss_bytes: int
    max_concurrent_rustc: int
    rustc_flags: dict[str, list[str]]
    """Distinct `-C codegen-units` and `-C lto` values seen on rustc command lines."""
    peak_rustc_crate: str | None
    """The crate whose rustc had the highest RSS seen."""
    peak_rustc_crate_rss_bytes: int
    wall_seconds: float
    interval_seconds: float
    cgroup_version: int | None = None
    samples: list[Sample] = field(default_factory=list)
    rustc_peaks: dict[str, int] = field(default_factory=dict)
    """Each crate's highest rustc RSS a poll saw."""
    unavailable: str | None = None
    """Why the host could not sample this build (it ran where this process table does not reach); None: sampled."""

    @property
    def available(self) -> bool:
        return self.unavailable is None

    @cached_property
    def figures(self) -> Figures:
        return figures(self.samples)

    def figures_json(self) -> dict[str, object]:
        """The figures, each null when the build could not be sampled: an unseen build cost unknown, not zero."""
        data: dict[str, object] = asdict(self.figures)
        return {key: None for key in data} if self.unavailable else data

    def as_json(self, *, with_samples: bool = True) -> dict[str, object]:
        data = asdict(self)
        data.pop("figures", None)
        data["available"] = self.available
        if self.unavailable:
            for key in (
                "peak_rss_bytes",
                "max_concurrent_rustc",
                "peak_rustc_crate_rss_bytes",
                "rustc_flags",
                "rustc_peaks",
            ):
                data[key] = None
        data["figures"] = self.figures_json()
        if not with_samples:
            data.pop("samples")
        return data


class UnseenBuild:
    """Stands where the sampler would for a build whose processes this machine cannot see (another engine, another
    host): it samples nothing, and its report says why, so no figure of it reads as zero."""

    def __init__(self, reason: str, *, interval: float) -> None:
        self.reason = reason
        self.interval = interval
        self._started = 0.0
        self._wall = 0.0

    def __enter__(self) -> UnseenBuild:
        self._started = time.monotonic()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._wall = time.monotonic() - self._started

    def latest(self) -> Sample | None:
        return None

    def compiling(self) -> tuple[str, ...]:
        return ()

    def report(self) -> SamplerReport:
        return SamplerReport(
            peak_rss_bytes=0,
            max_concurrent_rustc=0,
            rustc_flags={},
            peak_rustc_crate=None,
            peak_rustc_crate_rss_bytes=0,
            wall_seconds=round(self._wall, 3),
            interval_seconds=self.interval,
            unavailable=self.reason,
        )


def codegen_flags(cmdline: list[str]) -> Iterator[tuple[str, str]]:
    """(`codegen-units`, `16`)-style pairs from both `-C x=y` and `-Cx=y` spellings; a bare `-C lto` is `fat`."""
    for index, arg in enumerate(cmdline):
        value = None
        if arg == "-C" and index + 1 < len(cmdline):
            value = cmdline[index + 1]
        elif arg.startswith("-C") and len(arg) > 2:
            value = arg[2:]
        elif arg.startswith("--codegen="):
            value = arg.removeprefix("--codegen=")
        if value == "lto":
            # What cargo passes for `lto = true`; rustc reads a bare `-C lto` as fat LTO.
            yield "lto", "fat"
        elif value and "=" in value:
            key, _, setting = value.partition("=")
            if key in _FLAGS:
                yield key, setting


def crate_name(cmdline: list[str]) -> str | None:
    if "--crate-name" in cmdline:
        index = cmdline.index("--crate-name")
        return cmdline[index + 1] if index + 1 < len(cmdline) else None
    return None


@dataclass(frozen=True, kw_only=True)
class CgroupMemory:
    """Reads memory figures of a process's cgroup; the roots are parameters so tests can point at a tree double."""

    proc_root: Path = Path("/proc")
    cgroup_root: Path = Path("/sys/fs/cgroup")

    def cgroup_dir(self, pid: int) -> tuple[Path, int] | None:
        """The memory cgroup directory of a process and the cgroup version it belongs to."""
        try:
            lines = (self.proc_root / str(pid) / "cgroup").read_text().splitlines()
        except OSError:
            return None
        unified = None
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                directory = self.cgroup_root / "memory" / path.lstrip("/")
                return (directory, 1) if (directory / "memory.usage_in_bytes").exists() else None
            if controllers == "":
                unified = path
        if unified is not None:
            for root in (self.cgroup_root, self.cgroup_root / "unified"):
                directory = root / unified.lstrip("/")
                if (directory / "memory.current").exists():
                    return directory, 2
        return None

    @staticmethod
    def read(directory: Path, version: int) -> tuple[int, int, int | None] | None:
        """(usage, anonymous, high-water mark) of one cgroup, None once it is gone."""
        names = (
            ("memory.usage_in_bytes", "memory.max_usage_in_bytes")
            if version == 1
            else ("memory.current", "memory.peak")
        )
        try:
            usage = int((directory / names[0]).read_text())
            stat = dict(line.split() for line in (directory / "memory.stat").read_text().splitlines() if " " in line)
            peak_file = directory / names[1]
            peak = int(peak_file.read_text()) if peak_file.exists() else None
        except (OSError, ValueError):
            return None
        anon = int(stat.get("total_rss" if version == 1 else "anon", 0))
        return usage, anon, peak


def belongs_to_build(cwd: str, cmdline: list[str], source_root: str) -> bool:
    root = source_root.rstrip("/")
    if cwd == root or cwd.endswith(root) or f"{root}/" in cwd + "/":
        return True
    return any(f"{root}/" in arg for arg in cmdline)


class ProcessSampler:
    """Poll the process table on a thread while a build runs; use as a context manager."""

    def __init__(
        self,
        *,
        source_root: str = "/app",
        interval: float = SAMPLE_INTERVAL,
        cgroups: CgroupMemory | None = None,
        environ_marker: tuple[str, str] | None = None,
    ) -> None:
        self.source_root = source_root
        self.environ_marker = environ_marker
        """A variable and value only this build's processes have: another build of the same tree is left out."""
        self.interval = interval
        self.cgroups = cgroups or CgroupMemory()
        self._cgroup_version: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="process-sampler", daemon=True)
        self._samples: list[Sample] = []
        self._flags: dict[str, set[str]] = {name: set() for name in _FLAGS}
        self._crate_peaks: dict[str, int] = {}
        self._compiling: tuple[str, ...] = ()
        self._started = 0.0
        self._wall = 0.0

    def __enter__(self) -> ProcessSampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._wall = time.monotonic() - self._started

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.interval)

    def _counts(self, proc: psutil.Process, name: str, cmdline: list[str]) -> bool:
        """A rustc or cargo of this build: in the source tree, carrying the build's marker, not a rustup proxy."""
        if name not in _WATCHED:
            return False
        try:
            if not belongs_to_build(proc.cwd(), cmdline, self.source_root):
                return False
            if self.environ_marker:
                marker, value = self.environ_marker
                if proc.environ().get(marker) != value:
                    return False
            # A rustup proxy waiting on the real rustc would be counted twice.
            return not (name == "rustc" and psutil.Process(proc.info["ppid"]).name() == "rustc")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False

    def sample_once(self) -> Sample:
        rss = rustc = cargo = 0
        crates: set[str] = set()
        cgroup_dirs: set[tuple[Path, int]] = set()
        for proc in psutil.process_iter(["name", "cmdline", "memory_info", "ppid"]):
            name = proc.info["name"] or ""
            cmdline = proc.info["cmdline"] or []
            if not self._counts(proc, name, cmdline):
                continue
            found = self.cgroups.cgroup_dir(proc.pid)
            if found:
                cgroup_dirs.add(found)
            memory = proc.info["memory_info"]
            process_rss = memory.rss if memory else 0
            rss += process_rss
            if name == "rustc":
                rustc += 1
                for key, value in codegen_flags(cmdline):
                    self._flags[key].add(value)
                crate = crate_name(cmdline)
                if crate:
                    self._crate_peaks[crate] = max(self._crate_peaks.get(crate, 0), process_rss)
                    crates.add(crate)
            else:
                cargo += 1
        cgroup_usage = cgroup_anon = cgroup_peak = None
        for directory, version in cgroup_dirs:
            figures = self.cgroups.read(directory, version)
            if figures is None:
                continue
            self._cgroup_version = version
            usage, anon, peak = figures
            cgroup_usage = (cgroup_usage or 0) + usage
            cgroup_anon = (cgroup_anon or 0) + anon
            if peak is not None:
                cgroup_peak = (cgroup_peak or 0) + peak
        sample = Sample(
            t=round(time.monotonic() - self._started, 3),
            rss_bytes=rss,
            rustc=rustc,
            cargo=cargo,
            cgroup_bytes=cgroup_usage,
            cgroup_anon_bytes=cgroup_anon,
            cgroup_peak_bytes=cgroup_peak,
        )
        # Build scripts run under the package's own name on cargo's line; their rustc says only build_script_*.
        # Set before the sample is published, so whoever sees the sample sees its crates.
        self._compiling = tuple(sorted(c for c in crates if not c.startswith("build_script_")))
        self._samples.append(sample)
        return sample

    def compiling(self) -> tuple[str, ...]:
        """The crates this build's rustc processes were compiling at the last sample."""
        return self._compiling

    def latest(self) -> Sample | None:
        """The last sample taken (safe to call from another thread while sampling runs)."""
        samples = self._samples
        return samples[-1] if samples else None

    def report(self) -> SamplerReport:
        peak_crate = max(self._crate_peaks.items(), key=lambda item: item[1], default=None)
        return SamplerReport(
            cgroup_version=self._cgroup_version,
            peak_rss_bytes=max((s.rss_bytes for s in self._samples), default=0),
            max_concurrent_rustc=max((s.rustc for s in self._samples), default=0),
            rustc_flags={key: sorted(values) for key, values in self._flags.items()},
            peak_rustc_crate=peak_crate[0] if peak_crate else None,
            peak_rustc_crate_rss_bytes=peak_crate[1] if peak_crate else 0,
            wall_seconds=round(self._wall, 3),
            interval_seconds=self.interval,
            samples=list(self._samples),
            rustc_peaks=dict(self._crate_peaks),
        )
