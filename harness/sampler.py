"""Sample rustc and cargo processes of a build from the host.

A BuildKit RUN's processes live in the host's process table, so psutil sees
them without entering the container. Only the source tree's build counts: a
process counts when its working directory is the build's source root or one of
its arguments names a path under it (rustc of a registry dependency runs in the
registry but writes to `/app/target`), so the stage's own `cargo install
cargo-auditable`, which runs at its own parallelism in /tmp, is left out.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType

import psutil

_WATCHED = ("rustc", "cargo")
_FLAGS = ("codegen-units", "lto")


@dataclass(frozen=True, kw_only=True)
class Sample:
    t: float
    """Seconds since sampling started."""
    rss_bytes: int
    rustc: int
    cargo: int


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
    samples: list[Sample] = field(default_factory=list)

    def as_json(self, *, with_samples: bool = True) -> dict[str, object]:
        data = asdict(self)
        if not with_samples:
            data.pop("samples")
        return data

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n")


def codegen_flags(cmdline: list[str]) -> Iterator[tuple[str, str]]:
    """(`codegen-units`, `16`)-style pairs from both `-C x=y` and `-Cx=y` spellings."""
    for index, arg in enumerate(cmdline):
        value = None
        if arg == "-C" and index + 1 < len(cmdline):
            value = cmdline[index + 1]
        elif arg.startswith("-C") and len(arg) > 2:
            value = arg[2:]
        elif arg.startswith("--codegen="):
            value = arg.removeprefix("--codegen=")
        if value and "=" in value:
            key, _, setting = value.partition("=")
            if key in _FLAGS:
                yield key, setting


def crate_name(cmdline: list[str]) -> str | None:
    if "--crate-name" in cmdline:
        index = cmdline.index("--crate-name")
        return cmdline[index + 1] if index + 1 < len(cmdline) else None
    return None


def belongs_to_build(cwd: str, cmdline: list[str], source_root: str) -> bool:
    root = source_root.rstrip("/")
    if cwd == root or cwd.endswith(root) or f"{root}/" in cwd + "/":
        return True
    return any(f"{root}/" in arg for arg in cmdline)


class ProcessSampler:
    """Poll the process table on a thread while a build runs; use as a context manager."""

    def __init__(self, *, source_root: str = "/app", interval: float = 0.25) -> None:
        self.source_root = source_root
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="process-sampler", daemon=True)
        self._samples: list[Sample] = []
        self._flags: dict[str, set[str]] = {name: set() for name in _FLAGS}
        self._crate_peaks: dict[str, int] = {}
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

    def sample_once(self) -> Sample:
        rss = rustc = cargo = 0
        for proc in psutil.process_iter(["name", "cmdline", "memory_info", "ppid"]):
            name = proc.info["name"] or ""
            if name not in _WATCHED:
                continue
            try:
                cmdline = proc.info["cmdline"] or []
                cwd = proc.cwd()
                if not belongs_to_build(cwd, cmdline, self.source_root):
                    continue
                # A rustup proxy waiting on the real rustc would be counted twice.
                if name == "rustc" and psutil.Process(proc.info["ppid"]).name() == "rustc":
                    continue
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
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
            else:
                cargo += 1
        sample = Sample(t=round(time.monotonic() - self._started, 3), rss_bytes=rss, rustc=rustc, cargo=cargo)
        self._samples.append(sample)
        return sample

    def report(self) -> SamplerReport:
        peak_crate = max(self._crate_peaks.items(), key=lambda item: item[1], default=None)
        return SamplerReport(
            peak_rss_bytes=max((s.rss_bytes for s in self._samples), default=0),
            max_concurrent_rustc=max((s.rustc for s in self._samples), default=0),
            rustc_flags={key: sorted(values) for key, values in self._flags.items()},
            peak_rustc_crate=peak_crate[0] if peak_crate else None,
            peak_rustc_crate_rss_bytes=peak_crate[1] if peak_crate else 0,
            wall_seconds=round(self._wall, 3),
            interval_seconds=self.interval,
            samples=list(self._samples),
        )
