"""The schedule simulator on synthetic traces (test doubles) whose schedules and peaks are known by hand."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.build.schedule import Calibration, calibrate, recorded_peak, simulate
from harness.build.trace import Trace, TraceUnit, UnitKind
from tests.support.traces import GB, synthetic_trace, synthetic_unit

CARGO = 100 * 2**20


def _pipeline() -> Trace:
    """a (lib) -> b (lib) and a -> c (lib); bin needs b and c. Traced at one job, back to back."""
    return synthetic_trace(
        [
            synthetic_unit("a-1", start=0, end=2, metadata_ready=1, peak_rss_bytes=1 * GB),
            synthetic_unit("b-1", start=2, end=4, metadata_ready=3, deps=["a-1"], peak_rss_bytes=2 * GB),
            synthetic_unit("c-1", start=4, end=6, deps=["a-1"], peak_rss_bytes=1 * GB),
            synthetic_unit("bin-1", kind="bin", start=6, end=10, deps=["b-1", "c-1"], peak_rss_bytes=3 * GB),
        ]
    )


def _spans(trace: Trace, jobs: int) -> dict[str, tuple[float, float]]:
    return {unit.id: (unit.start, unit.end) for unit in simulate(trace, jobs).units}


def test_one_job_runs_the_units_back_to_back() -> None:
    schedule = simulate(_pipeline(), 1)
    assert schedule.wall_seconds == 10
    assert schedule.peak_bytes == CARGO + 3 * GB
    assert schedule.peak_units == ("bin-1",)


def test_a_lib_starts_on_its_dependencys_metadata_and_a_bin_waits_for_the_end() -> None:
    spans = _spans(_pipeline(), 2)
    assert spans["b-1"] == (1, 3), "b starts when a's metadata is ready (pipelining)"
    assert spans["c-1"] == (2, 4), "c waits for a token: a and b hold both"
    assert spans["bin-1"] == (4, 8), "the bin links: it waits for b and c to end"


def test_more_tokens_than_ready_units_change_nothing() -> None:
    assert _spans(_pipeline(), 3) == _spans(_pipeline(), 8)


def test_the_peak_sums_the_units_running_together_and_cargo() -> None:
    schedule = simulate(_pipeline(), 3)
    # At t=1 a, b and c run together: 1 + 2 + 1 GB, more than the bin alone (3 GB).
    assert schedule.peak_bytes == CARGO + 4 * GB
    assert schedule.peak_t == 1
    assert schedule.peak_units == ("b-1", "a-1", "c-1")
    assert max(step.bytes for step in schedule.memory) == schedule.peak_bytes


def test_a_proc_macro_dependent_waits_for_the_end_of_what_it_links() -> None:
    trace = synthetic_trace(
        [
            synthetic_unit("syn-1", start=0, end=4, metadata_ready=1),
            synthetic_unit("derive-1", kind="proc-macro", start=4, end=6, deps=["syn-1"]),
            synthetic_unit("user-1", start=6, end=8, metadata_ready=7, deps=["derive-1"]),
        ]
    )
    spans = _spans(trace, 4)
    assert spans["derive-1"][0] == 4, "a proc-macro is linked: it needs syn's objects, not its metadata"
    assert spans["user-1"][0] == 6, "a lib waits for the proc-macro it uses to end"


def test_build_script_compile_run_and_lib_run_in_that_order() -> None:
    trace = synthetic_trace(
        [
            synthetic_unit("cc-1", start=0, end=3, metadata_ready=1),
            synthetic_unit("ring-build", kind="build-script", start=3, end=4, deps=["cc-1"]),
            synthetic_unit("ring-run", kind="build-script-run", start=4, end=9, deps=["ring-build"]),
            synthetic_unit("ring-2", start=9, end=12, metadata_ready=10, deps=["ring-run"]),
        ]
    )
    spans = _spans(trace, 4)
    assert spans == {"cc-1": (0, 3), "ring-build": (3, 4), "ring-run": (4, 9), "ring-2": (9, 12)}


def test_a_bin_waits_for_the_end_of_every_unit_below_it_not_only_its_direct_deps() -> None:
    trace = synthetic_trace(
        [
            synthetic_unit("slow-1", start=0, end=10, metadata_ready=1),
            synthetic_unit("top-1", start=10, end=12, metadata_ready=11, deps=["slow-1"]),
            synthetic_unit("bin-1", kind="bin", start=12, end=13, deps=["top-1"]),
        ]
    )
    spans = _spans(trace, 2)
    assert spans["top-1"] == (1, 3), "top starts on slow's metadata"
    assert spans["bin-1"] == (10, 11), "the bin links slow's objects too: it waits for slow's end"


def test_cargo_starts_the_ready_unit_with_the_most_transitive_dependents() -> None:
    trace = synthetic_trace(
        [
            synthetic_unit("leaf-1", start=0, end=1),  # nothing depends on it; traced first
            synthetic_unit("root-1", start=1, end=2),
            synthetic_unit("mid-1", start=2, end=3, deps=["root-1"]),
            synthetic_unit("top-1", start=3, end=4, deps=["mid-1"]),
        ]
    )
    spans = _spans(trace, 1)
    assert spans["root-1"][0] == 0, "root has two transitive dependents, leaf none"
    assert spans["mid-1"][0] == 1, "then mid, with one"
    assert spans["leaf-1"][0] == 2, "leaf and top tie at none: the traced order decides"


def test_equal_priorities_keep_the_traced_order() -> None:
    trace = synthetic_trace([synthetic_unit(f"u{i}-1", start=i, end=i + 1) for i in range(4)])
    assert [unit.id for unit in simulate(trace, 1).units] == ["u0-1", "u1-1", "u2-1", "u3-1"]


def test_without_cargos_memory_the_schedule_says_so() -> None:
    trace = synthetic_trace([synthetic_unit("a-1", start=0, end=1)], cargo_peak_rss_bytes=None)
    schedule = simulate(trace, 1)
    assert schedule.peak_bytes == GB
    assert any("cargo's own memory is unknown" in note for note in schedule.notes)


# -- extra codegen threads -------------------------------------------------------------------------


def _heavy(end: float, peak: int, *, jobs: int, light_beside: bool = False) -> Trace:
    """One heavy lib (front end 10 s, then codegen), as traced at `jobs`; optionally a light unit beside it."""
    units = [synthetic_unit("heavy-1", start=0, end=end, metadata_ready=10, peak_rss_bytes=peak)]
    if light_beside:
        units.append(synthetic_unit("light-1", start=10, end=end, metadata_ready=end, peak_rss_bytes=GB // 10))
    return synthetic_trace(units, jobs=jobs)


# The issue's figures: v1.19.0's heaviest rustc is 2.13 GB at one job, 2.32 GB at two.
ONE_JOB = _heavy(30, 2_130_000_000, jobs=1)
TWO_JOBS = _heavy(25, 2_320_000_000, jobs=2)


def test_the_calibration_compares_a_unit_that_ran_alone_with_a_free_token() -> None:
    calibration = calibrate(ONE_JOB, TWO_JOBS)
    assert calibration is not None
    # codegen 20 s -> 15 s with two workers: 15/20 = 1 - p + p/2, so p = 0.5.
    assert calibration.parallel_fraction == pytest.approx(0.5)
    assert calibration.memory_per_worker == pytest.approx(0.19 / 2.13)
    assert calibration.units == ("heavy-1",)
    assert calibration.jobs == 2


def test_a_unit_that_had_company_does_not_calibrate() -> None:
    assert calibrate(ONE_JOB, _heavy(25, 2_320_000_000, jobs=2, light_beside=True)) is None


def test_a_calibration_needs_a_one_job_trace_and_one_at_more_jobs() -> None:
    assert calibrate(TWO_JOBS, TWO_JOBS) is None
    assert calibrate(ONE_JOB, ONE_JOB) is None


def test_a_rustc_alone_with_a_free_token_is_faster_and_heavier() -> None:
    calibration = calibrate(ONE_JOB, TWO_JOBS)
    schedule = simulate(ONE_JOB, 2, calibration)
    (heavy,) = schedule.units
    assert heavy.workers == 2
    assert schedule.wall_seconds == pytest.approx(25)
    assert schedule.peak_bytes == pytest.approx(CARGO + 2_320_000_000, abs=1)
    assert schedule.extra_threads


def test_a_trace_at_two_jobs_replays_itself_through_its_calibration() -> None:
    calibration = calibrate(ONE_JOB, TWO_JOBS)
    schedule = simulate(TWO_JOBS, 2, calibration)
    assert schedule.wall_seconds == pytest.approx(25)
    assert schedule.peak_bytes == pytest.approx(CARGO + 2_320_000_000, abs=1)


def test_at_one_job_there_is_no_free_token_for_extra_threads() -> None:
    schedule = simulate(ONE_JOB, 1, calibrate(ONE_JOB, TWO_JOBS))
    assert schedule.units[0].workers == 1
    assert schedule.wall_seconds == 30


def test_without_a_calibration_no_extra_threads_are_modelled_and_the_schedule_says_so() -> None:
    schedule = simulate(ONE_JOB, 2)
    assert not schedule.extra_threads
    assert schedule.wall_seconds == 30
    assert any("no calibration" in note for note in schedule.notes)


def test_workers_beyond_the_calibrations_jobs_are_marked_as_extrapolated() -> None:
    schedule = simulate(ONE_JOB, 4, calibrate(ONE_JOB, TWO_JOBS))
    assert schedule.units[0].workers == 4
    assert any("extrapolated" in note for note in schedule.notes)


def test_fat_lto_and_one_codegen_unit_take_no_extra_threads() -> None:
    calibration = Calibration(parallel_fraction=0.9, memory_per_worker=0.5, jobs=2, units=(), source="stand-in")
    trace = synthetic_trace(
        [
            synthetic_unit("one-1", start=0, end=5, metadata_ready=1, codegen_units=1),
            synthetic_unit("fat-1", kind="bin", start=5, end=9, deps=["one-1"], lto="fat"),
        ]
    )
    assert {unit.id: unit.workers for unit in simulate(trace, 4, calibration).units} == {"one-1": 1, "fat-1": 1}


def test_a_waiting_unit_takes_a_token_before_a_running_rustcs_extra_worker() -> None:
    calibration = Calibration(parallel_fraction=1.0, memory_per_worker=0.0, jobs=2, units=(), source="stand-in")
    trace = synthetic_trace(
        [
            synthetic_unit("a-1", start=0, end=10, metadata_ready=1),
            synthetic_unit("b-1", start=10, end=12, metadata_ready=11, deps=["a-1"]),
        ]
    )
    spans = {unit.id: (unit.start, unit.end) for unit in simulate(trace, 2, calibration).units}
    assert spans["b-1"][0] == 1, "b is ready on a's metadata and takes the second token at once"


# -- what the model predicts when jobs rise (and where it does not simply rise) ----------------------


def test_more_jobs_can_lower_the_peak_when_units_pair_differently() -> None:
    """A documented property of the model (docs/advise-model.md): the peak is not monotonic in jobs.

    At two jobs the 0.75 GB unit runs beside a 0.25 GB one; at three it runs alone after a batch of three light ones.
    """
    light, heavy = GB // 4, 3 * GB // 4
    units = [
        synthetic_unit("u0-1", start=0, end=1, metadata_ready=0, peak_rss_bytes=light),
        synthetic_unit("u1-1", start=1, end=2, metadata_ready=1, deps=["u0-1"], peak_rss_bytes=light),
        synthetic_unit("u2-1", start=2, end=3, metadata_ready=2, deps=["u1-1"], peak_rss_bytes=light),
        synthetic_unit("u3-1", start=3, end=4, metadata_ready=3, deps=["u2-1"], peak_rss_bytes=heavy),
        synthetic_unit("u4-1", kind="bin", start=4, end=5, deps=["u3-1"], peak_rss_bytes=light),
    ]
    trace = synthetic_trace(units)
    assert simulate(trace, 2).peak_bytes == CARGO + light + heavy
    assert simulate(trace, 3).peak_bytes == CARGO + heavy


@st.composite
def one_job_traces(draw: st.DrawFn, *, equal_peaks: bool = False, independent: bool = False) -> Trace:
    """A synthetic trace whose recorded schedule is a valid one-job schedule: units back to back, in an order
    where each unit's dependencies come before it."""
    count = draw(st.integers(1, 12))
    units: list[TraceUnit] = []
    t = 0.0
    for index in range(count):
        kind: UnitKind = draw(st.sampled_from(["lib", "lib", "lib", "proc-macro", "bin", "build-script-run"]))
        linkable = [u.id for u in units if u.kind != "bin"]
        deps = [] if independent or not linkable else draw(st.lists(st.sampled_from(linkable), unique=True, max_size=3))
        # Milliseconds, as a wrapper's clock gives them: no durations below the simulator's tolerance.
        duration = draw(st.integers(0, 50_000)) / 1000
        front = draw(st.integers(0, 1000)) / 1000 * duration
        metadata = t + front if kind in ("lib", "proc-macro") else None
        peak = GB if equal_peaks else draw(st.integers(0, 4 * GB))
        codegen_units = draw(st.sampled_from([1, 4, 16]))
        units.append(
            synthetic_unit(
                f"u{index}-1",
                kind=kind,
                start=t,
                end=t + duration,
                metadata_ready=metadata,
                peak_rss_bytes=peak,
                deps=deps,
                codegen_units=codegen_units,
            )
        )
        t += duration
    return synthetic_trace(units)


calibrations = st.builds(
    Calibration,
    parallel_fraction=st.floats(0, 1),
    memory_per_worker=st.floats(0, 1),
    jobs=st.just(2),
    units=st.just(()),
    source=st.just("stand-in"),
)


@settings(max_examples=200, deadline=None)
@given(one_job_traces(), st.one_of(st.none(), calibrations))
def test_one_job_reproduces_the_traces_own_peak_and_wall(trace: Trace, calibration: Calibration | None) -> None:
    schedule = simulate(trace, 1, calibration)
    assert math.isclose(schedule.wall_seconds, trace.wall_seconds, rel_tol=1e-9, abs_tol=1e-9)
    assert schedule.peak_bytes == recorded_peak(trace)


@settings(max_examples=200, deadline=None)
@given(one_job_traces(equal_peaks=True))
def test_the_peak_never_falls_as_jobs_rise_when_every_unit_weighs_the_same(trace: Trace) -> None:
    """Units of one size, without extra threads: the peak is cargo plus the most units running at once."""
    peaks = [simulate(trace, jobs).peak_bytes for jobs in range(1, 7)]
    assert peaks == sorted(peaks)


@settings(max_examples=200, deadline=None)
@given(one_job_traces(), st.one_of(st.none(), calibrations))
def test_the_peak_never_falls_below_the_heaviest_unit(trace: Trace, calibration: Calibration | None) -> None:
    heaviest = max(unit.peak_rss_bytes for unit in trace.units)
    for jobs in range(1, 5):
        assert simulate(trace, jobs, calibration).peak_bytes >= CARGO + heaviest


@settings(max_examples=200, deadline=None)
@given(one_job_traces(independent=True), st.one_of(st.none(), calibrations))
def test_wall_never_rises_as_jobs_rise_for_independent_units(trace: Trace, calibration: Calibration | None) -> None:
    walls = [simulate(trace, jobs, calibration).wall_seconds for jobs in range(1, 7)]
    assert all(later <= earlier + 1e-6 for earlier, later in itertools.pairwise(walls))


def test_any_simulated_schedule_keeps_the_rules() -> None:
    """Tokens and readiness, checked on a schedule of every kind of unit."""
    trace = synthetic_trace(
        [
            synthetic_unit("cc-1", start=0, end=3, metadata_ready=1),
            synthetic_unit("b-build", kind="build-script", start=3, end=4, deps=["cc-1"]),
            synthetic_unit("b-run", kind="build-script-run", start=4, end=6, deps=["b-build"]),
            synthetic_unit("b-2", start=6, end=9, metadata_ready=7, deps=["b-run", "cc-1"]),
            synthetic_unit("m-1", kind="proc-macro", start=9, end=11, deps=["cc-1"]),
            synthetic_unit("x-1", start=11, end=15, metadata_ready=12, deps=["b-2", "m-1"]),
            synthetic_unit("y-1", start=15, end=16, metadata_ready=15.5),
            synthetic_unit("app-1", kind="bin", start=16, end=20, deps=["x-1", "y-1"]),
        ]
    )
    for jobs in (1, 2, 3):
        units = {unit.id: unit for unit in simulate(trace, jobs).units}
        moments = sorted({u.start for u in units.values()})
        assert all(sum(u.start <= t < u.end for u in units.values()) <= jobs for t in moments)
        assert units["b-build"].start >= units["cc-1"].end
        assert units["b-run"].start >= units["b-build"].end
        meta = units["cc-1"].metadata_ready
        assert meta is not None and units["b-2"].start >= max(units["b-run"].end, meta)
        assert units["x-1"].start >= units["m-1"].end
        assert units["app-1"].start >= max(u.end for u in units.values() if u.id != "app-1")
