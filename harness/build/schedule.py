"""Replay cargo's schedule of a traced build for another CARGO_BUILD_JOBS: predicted peak memory and wall time.

Pure: a trace (harness.build.trace) in, a simulated timeline out. The rules, after cargo's
job queue and rustc's jobserver use (docs/advise-model.md says why each is so, and what the
model cannot see):

- Tokens: cargo runs at most N units at once (N = CARGO_BUILD_JOBS); each running unit,
  build-script runs included, holds one token.
- Readiness (cargo's `only_requires_rmeta` and `requires_upstream_objects`): a lib may start
  once each lib it depends on has its metadata ready (pipelining), and each other dependency
  (a proc-macro, a build-script run) has ended. A bin, a proc-macro and a build-script compile
  link, so they wait for every unit they depend on, transitively, to end. A build-script run
  waits for its build-script compile; a lib with a build script for that script's run.
- Choice: among ready units, cargo's DependencyQueue starts the one with the highest priority,
  its own cost plus the cost of every unit that depends on it transitively; cargo gives every
  unit the same cost, so: the unit with the most transitive dependents. Ties (cargo breaks
  them by hash-map order) go to the unit that started first in the trace.
- Extra codegen threads: a rustc asks the jobserver for more tokens for LLVM's codegen
  workers. In a unit's codegen phase (metadata ready to end for a lib; the whole run for a
  unit without metadata: a bin, a build-script compile) it uses up to min(free tokens + 1,
  codegen units) workers, where a free token is one no ready unit is waiting for (cargo
  starts waiting units first). The workers shorten the phase by Amdahl's law with the
  parallel fraction a Calibration measured, and each extra worker adds the measured fraction
  of the unit's peak. Without a calibration no extra threads are modelled, and the schedule
  says so. A unit with fat LTO (one merged module), one codegen unit, or a build-script run
  takes none.
- Memory: cargo's own peak RSS for the whole build, plus each running unit at its peak (with
  the most workers it had) for its whole run: an upper bound of the sum of peaks, which is
  what a memory limit on the build sees at worst.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from harness.build.trace import Trace, TraceUnit, UnitKind

RUSTC_DEFAULT_CODEGEN_UNITS = 16
"""What rustc uses for a non-incremental build when cargo passes no `-C codegen-units`."""
CALIBRATION_MIN_PHASE_SECONDS = 1.0
"""A unit's codegen phase shorter than this says more about process start-up than about threads."""
CALIBRATION_MAX_COMPANY = 0.05
"""A unit 'ran alone' when other units ran beside it for at most this fraction of its codegen phase."""

_EPSILON = 1e-9
_LINKED: frozenset[UnitKind] = frozenset({"bin", "proc-macro", "build-script"})
"""Unit kinds that link, so need every upstream unit's objects: cargo's `requires_upstream_objects`."""


# -- calibration -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """What extra codegen workers do to a rustc, measured by comparing the same units at one job and at more."""

    parallel_fraction: float
    """Amdahl's p of a codegen phase: with w workers it takes (1 - p + p / w) of its one-worker time."""
    memory_per_worker: float
    """Each extra worker adds this fraction of the unit's one-worker peak."""
    jobs: int
    """The jobs of the trace it was measured on: more workers than this are an extrapolation."""
    units: tuple[str, ...]
    """The units it was measured on: those that ran alone, with free tokens, in the many-jobs trace."""
    source: str
    """One line: which traces it compares."""

    def speedup(self, workers: float) -> float:
        return 1.0 / (1.0 - self.parallel_fraction + self.parallel_fraction / max(workers, 1.0))

    def memory_factor(self, workers: int) -> float:
        return 1.0 + self.memory_per_worker * max(workers - 1, 0)


def _effective_codegen_units(unit: TraceUnit) -> int:
    return unit.codegen_units if unit.codegen_units is not None else RUSTC_DEFAULT_CODEGEN_UNITS


def worker_cap(unit: TraceUnit) -> int:
    """The most codegen workers this unit can use: its codegen units, or 1 where its codegen is one piece."""
    if unit.kind == "build-script-run" or unit.lto == "fat":
        return 1
    return _effective_codegen_units(unit)


def codegen_phase(unit: TraceUnit) -> tuple[float, float]:
    """The part of the unit's run that extra workers can shorten (see the module's rules)."""
    if unit.kind == "build-script-run":
        return (unit.end, unit.end)
    if unit.metadata_ready is not None:
        return (unit.metadata_ready, unit.end)
    return (unit.start, unit.end)


class _Concurrency:
    """How many of a trace's units ran at each moment, as steps; built once, asked about many spans."""

    def __init__(self, units: Iterable[TraceUnit]) -> None:
        deltas: dict[float, int] = {}
        for unit in units:
            if unit.end > unit.start:
                deltas[unit.start] = deltas.get(unit.start, 0) + 1
                deltas[unit.end] = deltas.get(unit.end, 0) - 1
        self.times = sorted(deltas)
        self.counts: list[int] = []  # running on [times[i], times[i + 1])
        self.area = [0.0]  # unit-seconds from times[0] to times[i]
        running = 0
        for index, t in enumerate(self.times):
            running += deltas[t]
            self.counts.append(running)
            if index + 1 < len(self.times):
                self.area.append(self.area[-1] + running * (self.times[index + 1] - t))

    def _at(self, t: float) -> int:
        """The index of the step holding `t`."""
        return bisect.bisect_right(self.times, t) - 1

    def _integral(self, t: float) -> float:
        index = self._at(t)
        if index < 0:
            return 0.0
        return self.area[index] + self.counts[index] * (t - self.times[index])

    def company(self, span: tuple[float, float]) -> tuple[float, int]:
        """For a unit running through `span`: (unit-seconds of the others running then, the fewest others at any
        moment of it)."""
        begin, finish = span
        others = self._integral(finish) - self._integral(begin) - (finish - begin)
        first, last = max(self._at(begin), 0), self._at(finish - _EPSILON)
        fewest = min(self.counts[first : last + 1], default=1) - 1
        return max(others, 0.0), max(fewest, 0)


def _match(units: Iterable[TraceUnit]) -> dict[object, TraceUnit]:
    """Units by id, and by (crate, kind, target) where that is unique: ids change when cargo's hash inputs do."""
    found: dict[object, TraceUnit] = {}
    seen: dict[tuple[str, str, str | None], int] = {}
    listed = list(units)
    for unit in listed:
        found[unit.id] = unit
        key = (unit.crate, unit.kind, unit.target)
        seen[key] = seen.get(key, 0) + 1
    for unit in listed:
        key = (unit.crate, unit.kind, unit.target)
        if seen[key] == 1:
            found[key] = unit
    return found


def calibrate(one_job: Trace, many_jobs: Trace) -> Calibration | None:
    """The extra-thread effect, from the units that ran alone with free tokens in `many_jobs`, each compared with
    the same unit in `one_job` (a trace at CARGO_BUILD_JOBS=1). None when no unit qualifies or the traces are not
    such a pair."""
    jobs = many_jobs.settings.jobs
    if one_job.settings.jobs != 1 or jobs < 2:
        return None
    single = _match(one_job.units)
    concurrency = _Concurrency(many_jobs.units)
    fractions: list[tuple[float, float]] = []  # (weight: one-worker seconds, that unit's p)
    grown = 0.0
    base = 0.0
    used: list[str] = []
    for unit in many_jobs.units:
        begin, finish = codegen_phase(unit)
        length = finish - begin
        workers = min(jobs, worker_cap(unit))
        if workers < 2 or length < CALIBRATION_MIN_PHASE_SECONDS:
            continue
        alone = single.get(unit.id) or single.get((unit.crate, unit.kind, unit.target))
        if alone is None or worker_cap(alone) < 2:
            continue
        overlap, _ = concurrency.company((begin, finish))
        if overlap > CALIBRATION_MAX_COMPANY * length:
            continue
        alone_begin, alone_finish = codegen_phase(alone)
        one_worker = alone_finish - alone_begin
        if one_worker < CALIBRATION_MIN_PHASE_SECONDS:
            continue
        # Amdahl: length / one_worker = 1 - p + p / workers.
        p = (1.0 - length / one_worker) / (1.0 - 1.0 / workers)
        fractions.append((one_worker, min(max(p, 0.0), 1.0)))
        grown += (unit.peak_rss_bytes - alone.peak_rss_bytes) / (workers - 1)
        base += alone.peak_rss_bytes
        used.append(unit.id)
    if not used:
        return None
    weight = sum(w for w, _ in fractions)
    parallel_fraction = sum(w * p for w, p in fractions) / weight
    memory_per_worker = max(grown / base, 0.0) if base > 0 else 0.0
    return Calibration(
        parallel_fraction=parallel_fraction,
        memory_per_worker=memory_per_worker,
        jobs=jobs,
        units=tuple(used),
        source=(
            f"{_describe(many_jobs)} against {_describe(one_job)}: {len(used)} unit(s) that ran alone with free tokens"
        ),
    )


def _describe(trace: Trace) -> str:
    settings = trace.settings
    return f"{trace.ref or 'local'} jobs={settings.jobs} lto={settings.lto} codegen-units={settings.codegen_units}"


# -- one-worker costs ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class UnitCost:
    """What one unit costs with one worker, read off a trace (and, for a trace at more jobs, a calibration)."""

    id: str
    crate: str
    kind: UnitKind
    deps: tuple[str, ...]
    serial_seconds: float
    """Before its codegen phase: what no extra worker shortens (a lib's front end, a build-script run)."""
    codegen_seconds: float
    """Its codegen phase with one worker."""
    has_metadata: bool
    peak_rss_bytes: int
    """Its peak with one worker."""
    worker_cap: int
    order: float
    """When it started in the trace: cargo's tie-break stands in for that."""


def unit_costs(trace: Trace, calibration: Calibration | None) -> tuple[UnitCost, ...]:
    """One-worker costs of every unit. A trace at one job is that already; a trace at more jobs gave units the
    tokens that were free beside them, which the calibration takes back out (without one they stay as traced)."""
    jobs = trace.settings.jobs
    concurrency = _Concurrency(trace.units)
    costs = []
    for unit in trace.units:
        begin, finish = codegen_phase(unit)
        codegen = finish - begin
        peak = unit.peak_rss_bytes
        cap = worker_cap(unit)
        if calibration is not None and jobs > 1 and cap > 1 and finish > begin:
            overlap, fewest = concurrency.company((begin, finish))
            average_workers = min(float(cap), 1.0 + max(jobs - 1 - overlap / (finish - begin), 0.0))
            most_workers = min(cap, 1 + max(jobs - 1 - fewest, 0))
            codegen *= calibration.speedup(average_workers)
            peak = round(peak / calibration.memory_factor(most_workers))
        costs.append(
            UnitCost(
                id=unit.id,
                crate=unit.crate,
                kind=unit.kind,
                deps=unit.deps,
                serial_seconds=begin - unit.start if unit.kind != "build-script-run" else unit.duration,
                codegen_seconds=codegen,
                has_metadata=unit.metadata_ready is not None,
                peak_rss_bytes=peak,
                worker_cap=cap,
                order=unit.start,
            )
        )
    return tuple(costs)


# -- the replay ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SimulatedUnit:
    id: str
    crate: str
    kind: UnitKind
    start: float
    metadata_ready: float | None
    end: float
    workers: int
    """The most codegen workers it had at once (1: its own thread only)."""
    peak_rss_bytes: int
    """Its peak with that many workers."""
    memory: tuple[tuple[float, int], ...]
    """(from when, how much) it counts for until its end: its one-worker peak from its start, more from each
    moment it first had more workers (a process's resident memory rarely shrinks before it exits)."""


@dataclass(frozen=True, kw_only=True)
class MemoryStep:
    t: float
    bytes: int
    """The predicted memory from `t` to the next step's `t`."""


@dataclass(frozen=True, kw_only=True)
class Schedule:
    jobs: int
    wall_seconds: float
    peak_bytes: int
    peak_t: float
    peak_units: tuple[str, ...]
    """The units running at the peak, heaviest first."""
    cargo_bytes: int
    """cargo's own peak RSS, counted for the whole build (0 when the trace does not know it)."""
    units: tuple[SimulatedUnit, ...]
    memory: tuple[MemoryStep, ...]
    extra_threads: bool
    """Whether extra codegen threads were modelled (a calibration was given)."""
    tokens_used: int
    """The most tokens in use at once (units and their extra workers): below `jobs`, more jobs change nothing."""
    notes: tuple[str, ...]
    """One line each: what this prediction assumed that a reader should know."""


@dataclass
class _Running:
    cost: UnitCost
    start: float
    in_codegen: bool
    remaining: float
    metadata_at: float | None
    workers: int = 1
    rate: float = 1.0
    """How fast its current phase goes: the speed-up of its workers."""
    most_workers: int = 1
    growth: list[tuple[float, int]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Workload:
    """A trace's units as the replay needs them, prepared once for every number of jobs asked about."""

    costs: tuple[UnitCost, ...]
    priority: Mapping[str, int]
    needs: Mapping[str, frozenset[tuple[str, str]]]
    waiters: Mapping[tuple[str, str], tuple[str, ...]]
    """Who waits for each (unit, metadata | end): `needs` turned around."""
    calibration: Calibration | None
    cargo_bytes: int | None
    traced_jobs: int


def workload(trace: Trace, calibration: Calibration | None = None) -> Workload:
    costs = unit_costs(trace, calibration)
    needs = _needs(costs)
    waiters: dict[tuple[str, str], list[str]] = {}
    for unit_id, wanted in needs.items():
        for need in wanted:
            waiters.setdefault(need, []).append(unit_id)
    return Workload(
        costs=costs,
        priority=_priorities(costs),
        needs=needs,
        waiters={need: tuple(ids) for need, ids in waiters.items()},
        calibration=calibration,
        cargo_bytes=trace.cargo_peak_rss_bytes,
        traced_jobs=trace.settings.jobs,
    )


def simulate(trace: Trace, jobs: int, calibration: Calibration | None = None) -> Schedule:
    """The schedule cargo would run for the trace's units at CARGO_BUILD_JOBS=`jobs` (see the module's rules)."""
    return replay(workload(trace, calibration), jobs)


def replay(work: Workload, jobs: int) -> Schedule:
    """The schedule of a prepared workload at CARGO_BUILD_JOBS=`jobs`."""
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    return _replay(work, jobs, notes=_notes(work, jobs))


def _notes(work: Workload, jobs: int) -> tuple[str, ...]:
    calibration = work.calibration
    notes = []
    if calibration is not None and jobs > calibration.jobs:
        notes.append(
            f"more than {calibration.jobs} codegen workers per unit are extrapolated from a calibration at "
            f"{calibration.jobs} jobs"
        )
    if calibration is None:
        notes.append("no calibration: extra codegen threads are not modelled (units run as traced)")
        if work.traced_jobs > 1:
            notes.append(f"unit costs are as traced at {work.traced_jobs} jobs, extra threads included")
    if work.cargo_bytes is None:
        notes.append("cargo's own memory is unknown in this trace and not counted")
    return tuple(notes)


def _priorities(costs: Sequence[UnitCost]) -> dict[str, int]:
    """cargo's priority: 1 + the number of units that depend on this one, directly or not."""
    index = {cost.id: number for number, cost in enumerate(costs)}
    dependents: dict[str, list[str]] = {cost.id: [] for cost in costs}
    for cost in costs:
        for dep in cost.deps:
            dependents[dep].append(cost.id)
    below: dict[str, int] = {}  # bit set of transitive dependents
    for unit_id in reversed(_topological(costs)):
        bits = 0
        for dependent in dependents[unit_id]:
            bits |= below[dependent] | (1 << index[dependent])
        below[unit_id] = bits
    return {unit_id: 1 + bits.bit_count() for unit_id, bits in below.items()}


def _topological(costs: Sequence[UnitCost]) -> list[str]:
    """Dependencies before dependents (the trace loader has refused cycles)."""
    waiting = {cost.id: len(set(cost.deps)) for cost in costs}
    dependents: dict[str, list[str]] = {cost.id: [] for cost in costs}
    for cost in costs:
        for dep in set(cost.deps):
            dependents[dep].append(cost.id)
    ready = [cost.id for cost in costs if waiting[cost.id] == 0]
    ordered: list[str] = []
    while ready:
        unit_id = ready.pop()
        ordered.append(unit_id)
        for dependent in dependents[unit_id]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    if len(ordered) != len(costs):
        raise ValueError("the units' dependencies form a cycle")
    return ordered


_METADATA = "metadata"
_END = "end"


def _needs(costs: Sequence[UnitCost]) -> dict[str, frozenset[tuple[str, str]]]:
    """What each unit waits for: (unit id, metadata | end)."""
    by_id = {cost.id: cost for cost in costs}
    ids = [cost.id for cost in costs]
    bit = {unit_id: 1 << number for number, unit_id in enumerate(ids)}
    upstream: dict[str, int] = {}  # bit set of every unit below, transitively
    for unit_id in _topological(costs):
        found = 0
        for dep in by_id[unit_id].deps:
            found |= bit[dep] | upstream[dep]
        upstream[unit_id] = found
    needs: dict[str, frozenset[tuple[str, str]]] = {}
    for cost in costs:
        if cost.kind in _LINKED:
            below = upstream[cost.id]
            needs[cost.id] = frozenset((ids[n], _END) for n in range(below.bit_length()) if below >> n & 1)
        elif cost.kind == "lib":
            needs[cost.id] = frozenset(
                (dep, _METADATA if by_id[dep].kind == "lib" and by_id[dep].has_metadata else _END) for dep in cost.deps
            )
        else:
            needs[cost.id] = frozenset((dep, _END) for dep in cost.deps)
    return needs


def _replay(work: Workload, jobs: int, *, notes: tuple[str, ...]) -> Schedule:
    costs, priority, needs, calibration, waiters = work.costs, work.priority, work.needs, work.calibration, work.waiters
    by_id = {cost.id: cost for cost in costs}
    unmet = {unit_id: len(wanted) for unit_id, wanted in needs.items()}
    ready: list[tuple[int, float, str]] = []
    for cost in costs:
        if unmet[cost.id] == 0:
            heapq.heappush(ready, (-priority[cost.id], cost.order, cost.id))

    def produce(unit_id: str, edge: str) -> None:
        for waiter in waiters.get((unit_id, edge), ()):
            unmet[waiter] -= 1
            if unmet[waiter] == 0:
                heapq.heappush(ready, (-priority[waiter], by_id[waiter].order, waiter))

    running: dict[str, _Running] = {}
    done: list[SimulatedUnit] = []
    now = 0.0
    tokens_used = 0
    while ready or running:
        while ready and len(running) < jobs:
            _, _, unit_id = heapq.heappop(ready)
            cost = by_id[unit_id]
            state = _Running(cost=cost, start=now, in_codegen=False, remaining=cost.serial_seconds, metadata_at=None)
            running[unit_id] = state
        if calibration is not None:
            _lend_free_tokens(running, jobs, priority, calibration, now)
        tokens_used = max(tokens_used, sum(state.workers for state in running.values()))
        finished = _advance(running)
        now += finished
        for state in list(running.values()):
            if state.remaining > _EPSILON:
                continue
            if not state.in_codegen:
                state.in_codegen = True
                state.remaining = state.cost.codegen_seconds
                if state.cost.has_metadata:
                    state.metadata_at = now
                    produce(state.cost.id, _METADATA)
                if state.remaining > _EPSILON:
                    continue
            del running[state.cost.id]
            done.append(_finish(state, now, calibration))
            produce(state.cost.id, _END)
    if len(done) != len(costs):
        raise ValueError("some units never became ready: the trace's dependencies are inconsistent")
    return _schedule(done, work, jobs, tokens_used=tokens_used, notes=notes)


def _lend_free_tokens(
    running: Mapping[str, _Running],
    jobs: int,
    priority: Mapping[str, int],
    calibration: Calibration,
    now: float,
) -> None:
    """Tokens no waiting unit takes go to the running units' codegen workers, highest priority first."""
    free = jobs - len(running)
    for state in sorted(running.values(), key=lambda s: (-priority[s.cost.id], s.cost.order)):
        workers = 1
        if state.in_codegen and state.cost.worker_cap > 1:
            extra = min(free, state.cost.worker_cap - 1)
            workers += extra
            free -= extra
        if workers != state.workers:
            state.workers = workers
            state.rate = calibration.speedup(workers)
        if workers > state.most_workers:
            state.most_workers = workers
            state.growth.append((now, workers))


def _advance(running: Mapping[str, _Running]) -> float:
    """Run every unit to the next moment one of them ends a phase; how long that was."""
    if not running:
        return 0.0
    step = max(min(state.remaining / state.rate for state in running.values()), 0.0)
    for state in running.values():
        state.remaining -= step * state.rate
        if state.remaining < _EPSILON:
            state.remaining = 0.0
    return step


def _finish(state: _Running, now: float, calibration: Calibration | None) -> SimulatedUnit:
    factor = calibration.memory_factor(state.most_workers) if calibration is not None else 1.0
    base = state.cost.peak_rss_bytes
    memory = [(state.start, base)]
    if calibration is not None:
        memory += [(t, round(base * calibration.memory_factor(workers))) for t, workers in state.growth]
    return SimulatedUnit(
        id=state.cost.id,
        crate=state.cost.crate,
        kind=state.cost.kind,
        start=state.start,
        metadata_ready=state.metadata_at,
        end=now,
        workers=state.most_workers,
        peak_rss_bytes=round(base * factor),
        memory=tuple(memory),
    )


def _schedule(
    units: Sequence[SimulatedUnit], work: Workload, jobs: int, *, tokens_used: int, notes: tuple[str, ...]
) -> Schedule:
    """The replay's result: `units` as they ran under `jobs`; a calibrated workload lends free tokens as extra
    threads."""
    cargo = work.cargo_bytes or 0
    extra_threads = work.calibration is not None
    steps, peak, peak_t, at_peak = memory_steps(units, cargo)
    wall = max((unit.end for unit in units), default=0.0) - min((unit.start for unit in units), default=0.0)
    heaviest = sorted(at_peak, key=lambda u: -u.peak_rss_bytes)
    return Schedule(
        jobs=jobs,
        wall_seconds=wall,
        peak_bytes=peak,
        peak_t=peak_t,
        peak_units=tuple(u.id for u in heaviest),
        cargo_bytes=cargo,
        units=tuple(sorted(units, key=lambda u: (u.start, u.id))),
        memory=steps,
        extra_threads=extra_threads,
        tokens_used=tokens_used,
        notes=notes,
    )


def memory_steps(
    units: Sequence[SimulatedUnit], cargo_bytes: int
) -> tuple[tuple[MemoryStep, ...], int, float, list[SimulatedUnit]]:
    """The predicted memory over time (cargo's plus the running units'); the peak, when, and who ran then."""
    pieces: list[tuple[float, float, int, int]] = []
    for index, unit in enumerate(units):
        level = 0
        for t, total in unit.memory:
            pieces.append((t, unit.end, total - level, index))
            level = total
    steps, peak, peak_t, owners = _sweep(pieces, cargo_bytes)
    return steps, peak, peak_t, [units[index] for index in owners]


def recorded_peak(trace: Trace) -> int:
    """The model's measure on the trace's own schedule: cargo's peak plus the running units' peaks at the worst
    moment. What `simulate` at the trace's own jobs should come back to."""
    pieces = [(unit.start, unit.end, unit.peak_rss_bytes, index) for index, unit in enumerate(trace.units)]
    return _sweep(pieces, trace.cargo_peak_rss_bytes or 0)[1]


def _sweep(
    pieces: Sequence[tuple[float, float, int, int]], cargo_bytes: int
) -> tuple[tuple[MemoryStep, ...], int, float, list[int]]:
    """Sum (start, end, bytes, owner) pieces over time: the steps, the peak, when, and the owners present then.

    A piece that ends at the moment another starts does not overlap it (one job runs units back to back); a
    piece that starts and ends at the same moment counts beside what runs across that moment only.
    """
    events: list[tuple[float, int, int]] = []  # (t, order: 0 ends, 1 instants, 2 starts; piece)
    for number, (start, end, _, _) in enumerate(pieces):
        if end <= start:
            events.append((start, 1, number))
        else:
            events.append((start, 2, number))
            events.append((end, 0, number))
    events.sort()
    level = cargo_bytes
    present: dict[int, int] = {}
    steps: list[MemoryStep] = [MemoryStep(t=0.0, bytes=cargo_bytes)]
    peak, peak_t, at_peak = cargo_bytes, 0.0, list[int]()
    for t, order, number in events:
        _, _, size, owner = pieces[number]
        if order == 1:
            if level + size > peak:
                peak, peak_t, at_peak = level + size, t, sorted({*present, owner})
            continue
        if order == 2:
            level += size
            present[owner] = present.get(owner, 0) + 1
            if level > peak:
                peak, peak_t, at_peak = level, t, sorted(present)
        else:
            level -= size
            present[owner] -= 1
            if not present[owner]:
                del present[owner]
        if steps[-1].t == t:
            steps[-1] = MemoryStep(t=t, bytes=level)
        else:
            steps.append(MemoryStep(t=t, bytes=level))
    return tuple(steps), peak, peak_t, at_peak
