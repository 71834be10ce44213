"""Test doubles of build traces: small synthetic traces whose schedule and memory the tests know by heart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from harness.build.trace import LtoMode, Trace, TraceMachine, TraceSettings, TraceUnit, UnitKind, dump_trace

SYNTHETIC_TARGET = "x86_64-unknown-linux-gnu"
GB = 10**9


def synthetic_unit(  # noqa: PLR0913  # one keyword per field a test sets
    unit_id: str,
    *,
    start: float,
    end: float,
    kind: UnitKind = "lib",
    metadata_ready: float | None = None,
    peak_rss_bytes: int = GB,
    deps: Sequence[str] = (),
    codegen_units: int | None = 16,
    lto: LtoMode | None = None,
) -> TraceUnit:
    """One unit of a synthetic trace; a lib's metadata is ready at its end unless told otherwise."""
    if metadata_ready is None and kind in ("lib", "proc-macro"):
        metadata_ready = end
    return TraceUnit(
        id=unit_id,
        crate=unit_id.split("-", maxsplit=1)[0],
        kind=kind,
        target=None if kind in ("proc-macro", "build-script", "build-script-run") else SYNTHETIC_TARGET,
        start=start,
        end=end,
        metadata_ready=metadata_ready,
        peak_rss_bytes=peak_rss_bytes,
        cpu_seconds=end - start,
        codegen_units=codegen_units if kind != "build-script-run" else None,
        lto=lto,
        opt_level="3",
        deps=tuple(deps),
        exit_code=0,
    )


def synthetic_trace(  # noqa: PLR0913  # one keyword per field a test sets
    units: Sequence[TraceUnit],
    *,
    jobs: int = 1,
    lto: LtoMode = "off",
    codegen_units: int = 16,
    ref: str | None = "v1.19.0",
    cargo_peak_rss_bytes: int | None = 100 * 2**20,
    cpus: int = 2,
) -> Trace:
    """A trace of these units as a build at these settings would record it (wall: first start to last end)."""
    first = min((u.start for u in units), default=0.0)
    last = max((u.end for u in units), default=0.0)
    return Trace(
        harness_version="0.0.0-synthetic",
        ref=ref,
        upstream_commit=None,
        source="standin",
        target=SYNTHETIC_TARGET,
        settings=TraceSettings(jobs=jobs, lto=lto, codegen_units=codegen_units),
        build_args={"CARGO_BUILD_JOBS": str(jobs)},
        machine=TraceMachine(cpus=cpus, memory_bytes=24 * 2**30, loadavg_start=(0.1, 0.1, 0.1), loadavg_end=(1, 1, 1)),
        wall_seconds=last - first,
        cargo_peak_rss_bytes=cargo_peak_rss_bytes,
        units=tuple(units),
    )


def write_synthetic_trace(path: Path, trace: Trace) -> Path:
    path.write_bytes(dump_trace(trace))
    return path


def trace_json(trace: Trace) -> dict[str, object]:
    """The trace's document as a dict a test can break one field of."""
    document: dict[str, object] = json.loads(dump_trace(trace))
    return document
