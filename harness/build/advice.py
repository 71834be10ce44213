"""Which build knobs build fastest within a memory budget: candidates predicted from build traces.

Pure: traces in (harness.build.trace), candidates out, each a CARGO_BUILD_JOBS x (LTO, codegen
units) setting replayed by harness.build.schedule. A setting's unit costs come from a trace
measured at that setting (the one at the fewest jobs); the extra-thread calibration from a pair
of traces of one setting at one job and at more, of the same ref when it has such a pair, else
borrowed from the nearest ref that has one (a property of rustc, which every release shares).
Which traces: those the user names, else those the harness ships for pinned releases
(harness/resources/traces/, one file per ref, setting and jobs, named as `shipped_trace_name`
says), for the ref asked or the nearest traced release.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.build.schedule import Calibration, Schedule, calibrate, replay, workload
from harness.build.trace import LTO_MODES, LtoMode, Trace, load_trace
from harness.config.series import tag_version
from harness.errors import BadInput, EnvironmentProblem
from harness.knobs import CODEGEN_UNITS, JOBS, LTO

SHIPPED_SUFFIX = ".json"
_SHIPPED_NAME = re.compile(
    r"^(?P<ref>v\d[0-9A-Za-z.+-]*)\.lto-(?P<lto>off|thin|fat)\.cgu-(?P<cgu>\d+)\.jobs-(?P<jobs>\d+)\.json$"
)

LTO_BUILD_ARG: Mapping[LtoMode, str] = {"off": "false", "thin": "thin", "fat": "fat"}
"""The CARGO_PROFILE_RELEASE_LTO value for a trace's LTO mode when its own build args do not say (`off` is what
the patch's default, cargo's `false`, is traced as)."""

LOCAL_REF = "local"
"""What a trace of a local Dockerfile (its `ref` null) is advised as."""

_LTO_BY_NAME: Mapping[str, LtoMode] = {mode: mode for mode in LTO_MODES}

Setting = tuple[LtoMode, int]
"""(LTO, codegen units): what a trace's unit costs hold for."""


def shipped_trace_name(trace: Trace) -> str:
    """The file name a shipped trace has: `v1.19.0.lto-off.cgu-16.jobs-2.json`."""
    settings = trace.settings
    return f"{trace.ref}.lto-{settings.lto}.cgu-{settings.codegen_units}.jobs-{settings.jobs}{SHIPPED_SUFFIX}"


@dataclass(frozen=True, kw_only=True)
class ShippedTrace:
    """A shipped trace as its name describes it, before it is read."""

    path: Path
    ref: str
    lto: LtoMode
    codegen_units: int
    jobs: int


def shipped_traces(directory: Path) -> list[ShippedTrace]:
    """The traces in `directory` named as `shipped_trace_name` names them; other files are not traces."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.iterdir()):
        match = _SHIPPED_NAME.match(path.name)
        if match is None:
            continue
        found.append(
            ShippedTrace(
                path=path,
                ref=match["ref"],
                lto=_LTO_BY_NAME[match["lto"]],
                codegen_units=int(match["cgu"]),
                jobs=int(match["jobs"]),
            )
        )
    return found


def nearest_ref(asked: str | None, traced: Iterable[str]) -> tuple[str, str | None]:
    """The traced ref to advise from, and one line saying why when it is not the one asked for.

    A release without a trace takes the newest traced release not newer than it (its crates are the closest),
    else the oldest newer one; a branch or a commit, or no ref at all, the newest traced release.
    """
    refs = sorted(set(traced), key=lambda ref: (tag_version(ref) is not None, tag_version(ref) or 0, ref))
    if not refs:
        raise ValueError("no traced refs to choose from")
    if asked in refs:
        return asked, None
    newest = refs[-1]
    if asked is None:
        return newest, None if len(refs) == 1 else f"no --ref: advising from the newest traced release, {newest}"
    version = tag_version(asked)
    if version is None:
        return newest, f"{asked} is not a release tag: advising from the newest traced release, {newest}"
    versioned = [(tag_version(ref), ref) for ref in refs if tag_version(ref) is not None]
    lower = [(v, ref) for v, ref in versioned if v is not None and v <= version]
    higher = [(v, ref) for v, ref in versioned if v is not None and v > version]
    chosen = max(lower)[1] if lower else min(higher)[1] if higher else newest
    return chosen, f"{asked} has no build trace: advising from the nearest traced release, {chosen}"


@dataclass(frozen=True, kw_only=True)
class ChosenTraces:
    """The traces to advise from: those of one ref, and what was borrowed from the others."""

    traces: list[Trace]
    note: str | None
    """One line saying which ref that is, when it is not the one asked for plainly."""
    borrowed: Calibration | None
    """The extra-thread calibration of the nearest other ref with a pair, when `traces` have no pair of their own."""


def _has_pair(settings: Iterable[tuple[Setting, int]]) -> bool:
    """Whether some setting was traced at one job and at more: what a calibration compares."""
    jobs: dict[Setting, set[int]] = {}
    for setting, count in settings:
        jobs.setdefault(setting, set()).add(count)
    return any(1 in counts and max(counts) > 1 for counts in jobs.values())


def _nearest_first(ref: str, others: Iterable[str]) -> list[str]:
    """The other refs, nearest to `ref` first (as `nearest_ref` chooses)."""
    remaining, ordered = set(others) - {ref}, []
    while remaining:
        chosen, _ = nearest_ref(ref, remaining)
        ordered.append(chosen)
        remaining.discard(chosen)
    return ordered


def first_calibration(traces: Sequence[Trace]) -> Calibration | None:
    """The calibration of the first setting in `traces` traced at one job and at more, if any."""
    return next((source.calibration for source in setting_sources(traces) if source.calibration), None)


def _load_checked(shipped: ShippedTrace) -> Trace:
    trace = load_trace(shipped.path)
    expected = shipped_trace_name(trace)
    if trace.ref != shipped.ref or expected != shipped.path.name:
        raise EnvironmentProblem(
            f"the shipped trace {shipped.path} holds {expected}: the installation is damaged; reinstall "
            "mas-patch-harness"
        )
    return trace


def load_shipped(directory: Path, asked: str | None) -> ChosenTraces:
    """The shipped traces of the ref to advise for (read only those, and another ref's only to borrow its
    calibration when this ref has no pair), and the line saying which ref that is."""
    available = shipped_traces(directory)
    if not available:
        raise EnvironmentProblem(
            "this harness ships no build traces yet: pass --trace FILE, a trace.json that `mas-harness profile` "
            "or `mas-harness build --trace` wrote"
        )
    ref, note = nearest_ref(asked, (shipped.ref for shipped in available))
    traces = [_load_checked(shipped) for shipped in available if shipped.ref == ref]
    borrowed = None
    if not _has_pair(((s.lto, s.codegen_units), s.jobs) for s in available if s.ref == ref):
        for other in _nearest_first(ref, (shipped.ref for shipped in available)):
            group = [s for s in available if s.ref == other]
            if _has_pair(((s.lto, s.codegen_units), s.jobs) for s in group):
                borrowed = first_calibration([_load_checked(s) for s in group])
                if borrowed is not None:
                    break
    return ChosenTraces(traces=traces, note=note, borrowed=borrowed)


def traces_for_ref(traces: Sequence[Trace], asked: str | None) -> ChosenTraces:
    """Of the traces the user named, those of the ref to advise for, and a line saying which when it is not plain;
    the others lend their calibration when that ref has no pair of its own."""
    if not traces:
        raise BadInput("no traces to advise from")
    ref, note = nearest_ref(asked, (trace.ref or LOCAL_REF for trace in traces))
    chosen = [trace for trace in traces if (trace.ref or LOCAL_REF) == ref]
    borrowed = None
    if first_calibration(chosen) is None:
        for other in _nearest_first(ref, (trace.ref or LOCAL_REF for trace in traces)):
            borrowed = first_calibration([trace for trace in traces if (trace.ref or LOCAL_REF) == other])
            if borrowed is not None:
                break
    return ChosenTraces(traces=chosen, note=note, borrowed=borrowed)


# -- candidates ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Candidate:
    jobs: int
    lto: LtoMode
    codegen_units: int
    build_args: Mapping[str, str]
    """CARGO_BUILD_JOBS, CARGO_PROFILE_RELEASE_LTO and CARGO_PROFILE_RELEASE_CODEGEN_UNITS for this candidate."""
    peak_bytes: int
    wall_seconds: float
    fits: bool
    beyond_measured: bool
    """More jobs than the CPUs of the machine its traces were measured on: a prediction beyond the measurements."""
    schedule: Schedule

    @property
    def setting(self) -> Setting:
        return (self.lto, self.codegen_units)


@dataclass(frozen=True, kw_only=True)
class SettingSource:
    """Where one setting's prediction comes from: the trace of its costs, and the calibration (if any)."""

    lto: LtoMode
    codegen_units: int
    cost_trace: Trace
    calibration: Calibration | None


@dataclass(frozen=True, kw_only=True)
class Advice:
    ref: str
    target: str
    budget_bytes: int
    margin_percent: float
    cpus: int
    candidates: tuple[Candidate, ...]
    recommended: Candidate | None
    """The fastest candidate whose predicted peak fits under the budget less the margin; None when none does."""
    lowest_peak: Candidate
    sources: tuple[SettingSource, ...]
    notes: tuple[str, ...]
    """One line each: which traces, what the predictions assume."""

    @property
    def usable_bytes(self) -> int:
        return int(self.budget_bytes * (1 - self.margin_percent / 100))


def _setting(trace: Trace) -> Setting:
    return (trace.settings.lto, trace.settings.codegen_units)


def setting_sources(traces: Sequence[Trace], *, borrowed: Calibration | None = None) -> list[SettingSource]:
    """Per setting: the trace at the fewest jobs for its costs; a calibration from a one-job and a many-jobs trace
    of that setting, else of another setting (the extra-thread effect is a property of rustc, not of the knobs),
    else `borrowed` (another ref's)."""
    by_setting: dict[Setting, list[Trace]] = {}
    for trace in traces:
        by_setting.setdefault(_setting(trace), []).append(trace)
    calibrations: dict[Setting, Calibration] = {}
    for setting, group in by_setting.items():
        singles = [t for t in group if t.settings.jobs == 1]
        for many in sorted((t for t in group if t.settings.jobs > 1), key=lambda t: t.settings.jobs):
            found = next((c for single in singles if (c := calibrate(single, many)) is not None), None)
            if found is not None:
                calibrations[setting] = found
                break
    fallback = next(iter(calibrations.values()), borrowed)
    sources = []
    for setting, group in sorted(by_setting.items(), key=lambda item: (LTO_MODES.index(item[0][0]), -item[0][1])):
        cost = min(group, key=lambda t: t.settings.jobs)
        sources.append(
            SettingSource(
                lto=setting[0],
                codegen_units=setting[1],
                cost_trace=cost,
                calibration=calibrations.get(setting, fallback),
            )
        )
    return sources


def _build_args(source: SettingSource, jobs: int) -> dict[str, str]:
    traced = source.cost_trace.build_args
    return {
        JOBS: str(jobs),
        LTO: traced.get(LTO) or LTO_BUILD_ARG[source.lto],
        CODEGEN_UNITS: str(source.codegen_units),
    }


def advise_settings(
    traces: Sequence[Trace],
    *,
    budget_bytes: int,
    margin_percent: float,
    cpus: int,
    borrowed: Calibration | None = None,
) -> Advice:
    """Every candidate (jobs 1..cpus x each traced setting), predicted; the fastest that fits marked. `borrowed`:
    another ref's calibration, for traces without a pair of their own."""
    if not traces:
        raise BadInput("no traces to advise from")
    if not 0 <= margin_percent < 100:
        raise BadInput(f"--margin {margin_percent:g} is not a percentage from 0 to under 100")
    if cpus < 1:
        raise BadInput(f"--cpus {cpus} is not a number of CPUs")
    targets = sorted({trace.target for trace in traces})
    if len(targets) > 1:
        raise BadInput(f"the traces are of different targets ({', '.join(targets)}): give the traces of one target")
    refs = sorted({trace.ref or LOCAL_REF for trace in traces})
    if len(refs) > 1:
        raise BadInput(f"the traces are of different refs ({', '.join(refs)}): give the traces of one ref")
    sources = setting_sources(traces, borrowed=borrowed)
    usable = int(budget_bytes * (1 - margin_percent / 100))
    candidates: list[Candidate] = []
    for source in sources:
        work = workload(source.cost_trace, source.calibration)
        measured_cpus = source.cost_trace.machine.cpus
        schedule: Schedule | None = None
        for jobs in range(1, cpus + 1):
            # Once a schedule never used every token, more tokens change nothing: no need to replay it again.
            if schedule is None or schedule.tokens_used >= schedule.jobs:
                schedule = replay(work, jobs)
            candidates.append(
                Candidate(
                    jobs=jobs,
                    lto=source.lto,
                    codegen_units=source.codegen_units,
                    build_args=_build_args(source, jobs),
                    peak_bytes=schedule.peak_bytes,
                    wall_seconds=schedule.wall_seconds,
                    fits=schedule.peak_bytes <= usable,
                    beyond_measured=jobs > measured_cpus,
                    schedule=schedule,
                )
            )
    fitting = [c for c in candidates if c.fits]
    recommended = min(fitting, key=lambda c: (c.wall_seconds, c.peak_bytes, c.jobs)) if fitting else None
    lowest = min(candidates, key=lambda c: (c.peak_bytes, c.wall_seconds, c.jobs))
    return Advice(
        ref=refs[0],
        target=targets[0],
        budget_bytes=budget_bytes,
        margin_percent=margin_percent,
        cpus=cpus,
        candidates=tuple(candidates),
        recommended=recommended,
        lowest_peak=lowest,
        sources=tuple(sources),
        notes=_notes(sources, candidates),
    )


def _notes(sources: Sequence[SettingSource], candidates: Sequence[Candidate]) -> tuple[str, ...]:
    notes: list[str] = []
    for source in sources:
        trace = source.cost_trace
        calibration = source.calibration
        where = f"lto={source.lto} codegen-units={source.codegen_units}"
        traced = (
            f"{where}: unit costs from a {trace.source} trace of {trace.ref or 'a local build'} at "
            f"{jobs_text(trace.settings.jobs)} on {trace.machine.cpus} CPUs"
        )
        if calibration is None:
            traced += "; no calibration: extra codegen threads not modelled"
        else:
            traced += (
                f"; extra codegen threads from {calibration.source} (parallel fraction "
                f"{calibration.parallel_fraction:.2f}, +{calibration.memory_per_worker:.1%} of a unit's peak per "
                "worker)"
            )
        notes.append(traced)
    seen: set[str] = set()
    for candidate in candidates:
        for note in candidate.schedule.notes:
            # The per-setting lines above already say whether extra threads are modelled and at how many jobs.
            if note not in seen and not note.startswith(("no calibration", "unit costs are as traced")):
                seen.add(note)
                notes.append(note)
    return tuple(notes)


def jobs_text(jobs: int) -> str:
    return f"{jobs} job" if jobs == 1 else f"{jobs} jobs"


def build_arg_line(candidate: Candidate) -> str:
    """What the users' build.sh passes for this candidate."""
    return "docker buildx build " + " ".join(
        f"--build-arg {key}={value}" for key, value in candidate.build_args.items()
    )


def harness_build_line(candidate: Candidate, ref: str) -> str:
    """The `mas-harness build` that checks the candidate on a full source tree."""
    args = " ".join(f"--build-arg {key}={value}" for key, value in candidate.build_args.items())
    shown = ref if ref != LOCAL_REF else "REF"
    return f"mas-harness build --ref {shown} --source full --trace {args}"
