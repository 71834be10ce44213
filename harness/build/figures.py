"""A build's memory and time figures from each source that saw it, and which one the report's figures come from.

Two sources can see a build: the host's process sampler (harness.build.sampler), which polls
this machine's process table and so sees only a build on the local engine, and the in-build
trace (trace.json, written by the build's own rustc wrapper: each rustc's peak RSS as the
kernel counted it at exit, cargo's peak, every unit's start and end), which comes out of the
build wherever it ran. BuildKit's own per-step resource usage is a third, where buildx shows it:
its plain progress output, which the harness reads, does not.

Where both saw a build, they agree within the sampler's resolution: a poll reads a process's
RSS at one moment, at or below the kernel's high-water mark for it, and misses what lives
between two polls. So no crate's polled peak may exceed the traced one (beyond the KiB the
kernel rounds `ru_maxrss` to), and the sampler never sees more rustc at once than the trace
records. The reverse is not a disagreement: a short peak between polls is what a poll misses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.build.sampler import SamplerReport
from harness.build.trace import Trace, load_trace
from harness.build.tracing import TraceOutcome
from harness.errors import HarnessError

RUSAGE_GRANULARITY = 1024
"""getrusage's ru_maxrss is in KiB: a traced peak is rounded down to it."""
BUILDKIT_STEP_UNAVAILABLE = (
    "not read: the build's progress output (buildx --progress plain), which the harness reads, carries no per-step "
    "resource usage"
)
NOT_TRACED = "the build was not traced (`build --trace`; `profile` and builds the host cannot see always are)"
MemorySource = Literal["in-build trace", "host sampler"]


@dataclass(frozen=True, kw_only=True)
class TraceFigures:
    """What one trace.json says the build cost."""

    file: str
    peak_rustc_rss_bytes: int
    peak_rustc_crate: str | None
    cargo_peak_rss_bytes: int | None
    max_concurrent_rustc: int
    wall_seconds: float
    start: float
    end: float
    rustc_peaks: dict[str, int]
    """Each crate's highest rustc peak, as the kernel counted it."""

    def as_json(self) -> dict[str, object]:
        return {"available": True, "reason": None, **vars(self)}


def _max_overlap(intervals: Sequence[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def in_build_figures(trace: Trace, *, file: str) -> TraceFigures:
    """What one trace says the build cost: its rustc units (a build script's run is not a rustc), cargo, the span."""
    rustc = [unit for unit in trace.units if unit.kind != "build-script-run"]
    peaks: dict[str, int] = {}
    for unit in rustc:
        peaks[unit.crate] = max(peaks.get(unit.crate, 0), unit.peak_rss_bytes)
    heaviest = max(peaks.items(), key=lambda item: item[1], default=None)
    return TraceFigures(
        file=file,
        peak_rustc_rss_bytes=heaviest[1] if heaviest else 0,
        peak_rustc_crate=heaviest[0] if heaviest else None,
        cargo_peak_rss_bytes=trace.cargo_peak_rss_bytes,
        max_concurrent_rustc=_max_overlap([(unit.start, unit.end) for unit in rustc]),
        wall_seconds=trace.wall_seconds,
        start=min((unit.start for unit in trace.units), default=0.0),
        end=max((unit.end for unit in trace.units), default=0.0),
        rustc_peaks=peaks,
    )


def build_figures(sampler: SamplerReport, trace: TraceOutcome | None) -> BuildFigures:
    """Every source's figures of a build: the sampler's report, and the trace.json the build left, if it did."""
    if trace is None:
        return BuildFigures(sampler=sampler, trace=None, trace_unavailable=NOT_TRACED)
    if trace.file is None:
        return BuildFigures(sampler=sampler, trace=None, trace_unavailable=trace.error or "no trace.json")
    try:
        loaded = load_trace(trace.file)
    except HarnessError as exc:
        return BuildFigures(sampler=sampler, trace=None, trace_unavailable=str(exc))
    return BuildFigures(sampler=sampler, trace=in_build_figures(loaded, file=str(trace.file)))


@dataclass(frozen=True, kw_only=True)
class Agreement:
    """The host sampler against the trace, on one build both saw."""

    crates_compared: int
    over: dict[str, tuple[int, int]]
    """Crates whose polled peak exceeds the traced one: (polled, traced)."""
    sampler_max_concurrent_rustc: int
    trace_max_concurrent_rustc: int

    @property
    def agree(self) -> bool:
        return not self.over and self.sampler_max_concurrent_rustc <= self.trace_max_concurrent_rustc

    def as_json(self) -> dict[str, object]:
        return {
            "agree": self.agree,
            "crates_compared": self.crates_compared,
            "over": {crate: list(pair) for crate, pair in self.over.items()},
            "sampler_max_concurrent_rustc": self.sampler_max_concurrent_rustc,
            "trace_max_concurrent_rustc": self.trace_max_concurrent_rustc,
            "tolerance": "a polled peak may be lower than the traced one (a poll misses what lives between two), "
            f"never higher than it plus {RUSAGE_GRANULARITY} bytes (ru_maxrss is in KiB)",
        }


def agreement(sampler_peaks: Mapping[str, int], sampler_max_rustc: int, trace: TraceFigures) -> Agreement:
    both = sorted(set(sampler_peaks) & set(trace.rustc_peaks))
    over = {
        crate: (sampler_peaks[crate], trace.rustc_peaks[crate])
        for crate in both
        if sampler_peaks[crate] > trace.rustc_peaks[crate] + RUSAGE_GRANULARITY
    }
    return Agreement(
        crates_compared=len(both),
        over=over,
        sampler_max_concurrent_rustc=sampler_max_rustc,
        trace_max_concurrent_rustc=trace.max_concurrent_rustc,
    )


@dataclass(frozen=True, kw_only=True)
class BuildFigures:
    """Every source's figures of one build, and which the report's memory figures come from."""

    sampler: SamplerReport
    trace: TraceFigures | None
    trace_unavailable: str | None = None

    @property
    def memory_source(self) -> MemorySource | None:
        """The in-build trace wherever there is one (it saw every rustc, polls miss some); else the host sampler."""
        if self.trace is not None:
            return "in-build trace"
        return "host sampler" if self.sampler.available else None

    def agreement(self) -> Agreement | None:
        if self.trace is None or not self.sampler.available:
            return None
        return agreement(self.sampler.rustc_peaks, self.sampler.max_concurrent_rustc, self.trace)

    def as_json(self) -> dict[str, object]:
        agreed = self.agreement()
        return {
            "memory_source": self.memory_source,
            "host_sampler": {"available": self.sampler.available, "reason": self.sampler.unavailable},
            "in_build_trace": self.trace.as_json()
            if self.trace
            else {"available": False, "reason": self.trace_unavailable},
            "buildkit_step": {"available": False, "reason": BUILDKIT_STEP_UNAVAILABLE},
            "agreement": agreed.as_json() if agreed else None,
        }


def figures_from_json(sampler: SamplerReport, data: Mapping[str, Any]) -> BuildFigures:
    """`BuildFigures.as_json()` read back (a profile report rendered again), with the sampler it was made with."""
    trace = data.get("in_build_trace") or {}
    names = set(TraceFigures.__dataclass_fields__)
    return BuildFigures(
        sampler=sampler,
        trace=TraceFigures(**{k: v for k, v in trace.items() if k in names}) if trace.get("available") else None,
        trace_unavailable=None if trace.get("available") else trace.get("reason"),
    )
