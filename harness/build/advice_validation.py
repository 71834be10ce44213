"""`advise`'s predictions checked against measured builds that were not used to make them (build layer).

Each measured build at more than one job is predicted from the other traces only: its own trace, and every
trace of its ref at the same setting and number of jobs, are left out, so neither its unit costs nor the
calibration of extra codegen threads saw it. A ref without a pair of its own borrows the calibration of the
nearest ref with one, as `advise` does. The prediction is then what `advise` would have said for it
(`setting_sources`, the same replay), and the errors are published beside it.

A measured build is one entry of a `profile.json`: its compile step's wall time, the sampler's peak RSS of
rustc and cargo, and the peak anonymous memory of the build's cgroup, with its own `trace.json` when it was
traced (builds from before the trace existed are measured only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.build.advice import SettingSource, first_calibration, nearest_ref, setting_sources
from harness.build.schedule import Calibration, simulate
from harness.build.trace import LtoMode, Trace, load_trace, lto_mode
from harness.errors import BadInput
from harness.files import MAX_REPORT_BYTES, read_input
from harness.knobs import CODEGEN_UNITS, JOBS, LTO


@dataclass(frozen=True, kw_only=True)
class MeasuredBuild:
    label: str
    """Where it was read: the report directory and the profile's name."""
    ref: str
    target: str | None
    lto: LtoMode
    codegen_units: int
    jobs: int
    compile_seconds: float
    peak_rss_bytes: int | None
    """The sampler's peak RSS of rustc and cargo together."""
    peak_cgroup_anon_bytes: int | None
    trace: Trace | None
    """Its own trace, when it was traced; never used for its own prediction."""


@dataclass(frozen=True, kw_only=True)
class ValidatedPrediction:
    measured: MeasuredBuild
    predicted_peak_bytes: int
    predicted_wall_seconds: float
    source: SettingSource
    """The cost trace and the calibration the prediction came from."""

    @property
    def calibration(self) -> Calibration | None:
        return self.source.calibration

    @property
    def peak_error_vs_rss(self) -> float | None:
        return _relative(self.predicted_peak_bytes, self.measured.peak_rss_bytes)

    @property
    def peak_error_vs_cgroup_anon(self) -> float | None:
        return _relative(self.predicted_peak_bytes, self.measured.peak_cgroup_anon_bytes)

    @property
    def wall_error(self) -> float | None:
        """Against the traced span when the build was traced (what the replay predicts), else the compile step."""
        return _relative(self.predicted_wall_seconds, self.measured_wall_seconds)

    @property
    def measured_wall_seconds(self) -> float:
        trace = self.measured.trace
        return trace.wall_seconds if trace is not None else self.measured.compile_seconds


@dataclass(frozen=True, kw_only=True)
class NotValidated:
    measured: MeasuredBuild
    reason: str


def _relative(predicted: float, measured: float | None) -> float | None:
    return (predicted - measured) / measured if measured else None


def measured_builds(
    report_dir: Path, *, assumed: Mapping[str, tuple[LtoMode, int, int]] | None = None
) -> list[MeasuredBuild]:
    """The profiles of one `profile` report directory whose build args name jobs and LTO (else: not comparable),
    and those `assumed` names with their (LTO, codegen units, jobs): a profile that left the knobs to the
    Dockerfile's defaults, whose values the caller knows from the patch."""
    path = report_dir / "profile.json"
    data = read_input(path, "profile report", limit=MAX_REPORT_BYTES)
    if data is None:
        raise BadInput(f"{path} does not exist: name a `mas-harness profile --report-dir` directory")
    try:
        document = json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise BadInput(f"{path}: not a profile report ({exc})") from None
    builds = []
    for entry in document.get("profiles", []):
        if not entry.get("ok"):
            continue
        name = str(entry["name"])
        trace_path = report_dir / name / "trace.json"
        trace = load_trace(trace_path) if trace_path.is_file() else None
        settings = (assumed or {}).get(name) or _settings(
            entry.get("build_args", {}), entry.get("rustc_flags", {}), trace
        )
        if settings is None:
            continue
        lto, codegen_units, jobs = settings
        builds.append(
            MeasuredBuild(
                label=f"{report_dir.name}/{name}",
                ref=str(document.get("ref")),
                target=trace.target if trace is not None else None,
                lto=lto,
                codegen_units=codegen_units,
                jobs=jobs,
                compile_seconds=float(entry.get("compile_seconds") or entry["wall_seconds"]),
                peak_rss_bytes=entry.get("peak_rss_bytes"),
                peak_cgroup_anon_bytes=entry.get("peak_cgroup_anon_bytes"),
                trace=trace,
            )
        )
    return builds


def _settings(
    build_args: Mapping[str, str], rustc_flags: Mapping[str, Sequence[str]], trace: Trace | None
) -> tuple[LtoMode, int, int] | None:
    if trace is not None:
        return trace.settings.lto, trace.settings.codegen_units, trace.settings.jobs
    # An untraced build: only what its build args say; a knob left to the Dockerfile's default is not guessed.
    if JOBS not in build_args or LTO not in build_args:
        return None
    units = build_args.get(CODEGEN_UNITS) or next(iter(rustc_flags.get("codegen-units", ())), None)
    if units is None:
        return None
    return lto_mode(build_args[LTO]), int(units), int(build_args[JOBS])


def validate(traces: Sequence[Trace], measured: Sequence[MeasuredBuild]) -> list[ValidatedPrediction | NotValidated]:
    """Each measured build at more than one job, predicted from the traces that are not of its setting and jobs."""
    checks: list[ValidatedPrediction | NotValidated] = []
    for build in measured:
        if build.jobs < 2:
            continue
        usable = [
            trace
            for trace in traces
            if trace is not build.trace and (build.target is None or trace.target == build.target)
        ]
        pool = [
            trace
            for trace in usable
            if (trace.ref or None) == build.ref
            and (trace.settings.lto, trace.settings.codegen_units, trace.settings.jobs)
            != (build.lto, build.codegen_units, build.jobs)
        ]
        source = next(
            (
                s
                for s in setting_sources(pool, borrowed=_borrowed(build.ref, usable))
                if (s.lto, s.codegen_units) == (build.lto, build.codegen_units)
            ),
            None,
        )
        if source is None:
            checks.append(NotValidated(measured=build, reason="no other trace of its setting"))
            continue
        schedule = simulate(source.cost_trace, build.jobs, source.calibration)
        checks.append(
            ValidatedPrediction(
                measured=build,
                predicted_peak_bytes=schedule.peak_bytes,
                predicted_wall_seconds=schedule.wall_seconds,
                source=source,
            )
        )
    return checks


def _borrowed(ref: str, traces: Sequence[Trace]) -> Calibration | None:
    """The calibration of the nearest other ref with a pair, for a ref whose own traces have none."""
    others = {trace.ref for trace in traces if trace.ref and trace.ref != ref}
    while others:
        chosen, _ = nearest_ref(ref, others)
        found = first_calibration([trace for trace in traces if trace.ref == chosen])
        if found is not None:
            return found
        others.discard(chosen)
    return None
