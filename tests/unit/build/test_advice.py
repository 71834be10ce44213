"""advise's choice on synthetic traces (test doubles): candidates, the fastest that fits, traces found by ref."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.build.advice import (
    Advice,
    advise_settings,
    build_arg_line,
    harness_build_line,
    load_shipped,
    nearest_ref,
    setting_sources,
    shipped_trace_name,
    shipped_traces,
    traces_for_ref,
)
from harness.build.trace import LtoMode, Trace
from harness.errors import BadInput, EnvironmentProblem
from harness.knobs import CODEGEN_UNITS, JOBS, LTO
from tests.support.traces import GB, synthetic_trace, synthetic_unit, write_synthetic_trace

CARGO = 100 * 2**20


def synthetic_build(
    *, jobs: int = 1, lto: LtoMode = "off", codegen_units: int = 16, heavy: int = 2 * GB, ref: str = "v1.19.0"
) -> Trace:
    """Two independent 1 GB libs, then a heavy bin linking both, as traced at `jobs`: at two the libs overlap."""
    lto_arg = {"off": "false", "thin": "thin", "fat": "fat"}[lto]
    second = 0 if jobs > 1 else 10
    trace = synthetic_trace(
        [
            synthetic_unit("left-1", start=0, end=10, metadata_ready=2, peak_rss_bytes=GB, codegen_units=codegen_units),
            synthetic_unit(
                "right-1",
                start=second,
                end=second + 10,
                metadata_ready=second + 2,
                peak_rss_bytes=GB,
                codegen_units=codegen_units,
            ),
            synthetic_unit(
                "app-1",
                kind="bin",
                start=second + 10,
                end=second + 40,
                deps=["left-1", "right-1"],
                peak_rss_bytes=heavy,
                codegen_units=codegen_units,
                lto=None if lto == "off" else lto,
            ),
        ],
        jobs=jobs,
        lto=lto,
        codegen_units=codegen_units,
        ref=ref,
    )
    return dataclasses.replace(trace, build_args={JOBS: str(jobs), LTO: lto_arg, CODEGEN_UNITS: str(codegen_units)})


def _advise(traces: list[Trace], budget: int, *, cpus: int = 2, margin: float = 10.0) -> Advice:
    return advise_settings(traces, budget_bytes=budget, margin_percent=margin, cpus=cpus)


def test_every_jobs_and_traced_setting_is_a_candidate() -> None:
    advice = _advise([synthetic_build(), synthetic_build(lto="fat", codegen_units=1, heavy=5 * GB)], 100 * GB, cpus=3)
    assert [(c.jobs, c.lto, c.codegen_units) for c in advice.candidates] == [
        (1, "off", 16),
        (2, "off", 16),
        (3, "off", 16),
        (1, "fat", 1),
        (2, "fat", 1),
        (3, "fat", 1),
    ]


def test_the_fastest_candidate_under_the_budget_less_the_margin_is_recommended() -> None:
    advice = _advise([synthetic_build()], 10 * GB)
    # One job: 50 s, 2 GB; two jobs: the libs overlap (2 GB), the bin after them: 40 s.
    assert [(c.jobs, c.wall_seconds, c.peak_bytes) for c in advice.candidates] == [
        (1, 50, CARGO + 2 * GB),
        (2, 40, CARGO + 2 * GB),
    ]
    assert advice.recommended is not None and advice.recommended.jobs == 2


def test_the_margin_can_turn_a_fit_into_no_fit() -> None:
    budget = CARGO + 2 * GB + GB // 20  # fits the peak by 2 %
    assert _advise([synthetic_build()], budget, margin=0).recommended is not None
    assert _advise([synthetic_build()], budget, margin=10).recommended is None


def test_a_budget_below_the_heaviest_single_unit_fits_nothing_and_names_the_lowest_peak() -> None:
    advice = _advise([synthetic_build(heavy=3 * GB)], 2 * GB, margin=0)
    assert advice.recommended is None
    assert not any(c.fits for c in advice.candidates)
    assert advice.lowest_peak.peak_bytes == CARGO + 3 * GB


def test_a_slower_setting_wins_when_the_faster_one_does_not_fit() -> None:
    light = synthetic_build(lto="off", heavy=2 * GB)
    fat = synthetic_build(lto="fat", codegen_units=1, heavy=6 * GB)
    advice = _advise([light, fat], 4 * GB, margin=0)
    assert advice.recommended is not None
    assert (advice.recommended.lto, advice.recommended.codegen_units) == ("off", 16)


def test_the_build_arg_lines_carry_the_candidates_knobs() -> None:
    advice = _advise([synthetic_build(lto="thin")], 10 * GB)
    best = advice.recommended
    assert best is not None
    assert build_arg_line(best) == (
        "docker buildx build --build-arg CARGO_BUILD_JOBS=2 --build-arg CARGO_PROFILE_RELEASE_LTO=thin "
        "--build-arg CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16"
    )
    assert harness_build_line(best, "v1.19.0").startswith("mas-harness build --ref v1.19.0 --source full")


def test_the_patch_default_lto_is_written_as_the_build_was_given_it() -> None:
    best = _advise([synthetic_build(lto="off")], 10 * GB).recommended
    assert best is not None and best.build_args[LTO] == "false"


def test_jobs_beyond_the_traced_machines_cpus_are_marked() -> None:
    advice = _advise([synthetic_build()], 10 * GB, cpus=4)
    assert [c.beyond_measured for c in advice.candidates] == [False, False, True, True]


def test_costs_come_from_the_trace_at_the_fewest_jobs_and_a_pair_calibrates() -> None:
    one = synthetic_build(jobs=1)
    two = synthetic_build(jobs=2)
    (source,) = setting_sources([two, one])
    assert source.cost_trace is one
    # The bin ran alone in both (30 s each way): no speed-up, and no growth, measured.
    assert source.calibration is not None
    assert source.calibration.parallel_fraction == 0
    assert source.calibration.units == ("app-1",)


def test_a_setting_without_its_own_pair_borrows_another_settings_calibration() -> None:
    sources = setting_sources([synthetic_build(jobs=1), synthetic_build(jobs=2), synthetic_build(lto="thin")])
    by_lto = {s.lto: s for s in sources}
    assert by_lto["thin"].calibration is by_lto["off"].calibration is not None


def test_traces_of_two_targets_or_two_refs_are_refused() -> None:
    with pytest.raises(BadInput, match="different refs"):
        _advise([synthetic_build(ref="v1.17.0"), synthetic_build(ref="v1.19.0")], 10 * GB)
    arm = dataclasses.replace(synthetic_build(lto="thin"), target="aarch64-unknown-linux-gnu")
    with pytest.raises(BadInput, match="different targets"):
        _advise([synthetic_build(), arm], 10 * GB)


@pytest.mark.parametrize(
    ("asked", "chosen", "said"),
    [
        ("v1.19.0", "v1.19.0", None),
        ("v1.18.0", "v1.17.0", "v1.18.0 has no build trace: advising from the nearest traced release, v1.17.0"),
        ("v1.20.1", "v1.19.0", "v1.20.1 has no build trace: advising from the nearest traced release, v1.19.0"),
        ("v0.9.0", "v1.17.0", "v0.9.0 has no build trace: advising from the nearest traced release, v1.17.0"),
        ("main", "v1.19.0", "main is not a release tag: advising from the newest traced release, v1.19.0"),
        (None, "v1.19.0", "no --ref: advising from the newest traced release, v1.19.0"),
    ],
)
def test_a_ref_without_a_trace_takes_the_nearest_traced_release(asked: str | None, chosen: str, said: str) -> None:
    assert nearest_ref(asked, ["v1.19.0", "v1.17.0"]) == (chosen, said)


def test_the_given_traces_of_the_asked_ref_are_kept() -> None:
    traces = [synthetic_build(ref="v1.17.0"), synthetic_build(ref="v1.19.0", lto="thin")]
    chosen = traces_for_ref(traces, "v1.19.0")
    assert chosen.traces == [traces[1]] and chosen.note is None


def test_a_ref_without_a_pair_borrows_the_nearest_refs_calibration_from_the_given_traces() -> None:
    lone = synthetic_build(ref="v1.17.0")
    pair = [synthetic_build(ref="v1.19.0"), synthetic_build(ref="v1.19.0", jobs=2)]
    chosen = traces_for_ref([lone, *pair], "v1.17.0")
    assert chosen.traces == [lone]
    assert chosen.borrowed is not None and chosen.borrowed.source.startswith("v1.19.0 jobs=2")
    (source,) = setting_sources(chosen.traces, borrowed=chosen.borrowed)
    assert source.cost_trace is lone and source.calibration is chosen.borrowed


def test_a_ref_with_its_own_pair_borrows_nothing() -> None:
    own = [synthetic_build(ref="v1.17.0"), synthetic_build(ref="v1.17.0", jobs=2)]
    chosen = traces_for_ref([*own, synthetic_build(ref="v1.19.0"), synthetic_build(ref="v1.19.0", jobs=2)], "v1.17.0")
    assert chosen.traces == own and chosen.borrowed is None


def test_shipped_traces_are_found_by_name_and_only_the_refs_read(tmp_path: Path) -> None:
    for trace in (
        synthetic_build(ref="v1.17.0"),
        synthetic_build(ref="v1.19.0"),
        synthetic_build(ref="v1.19.0", jobs=2),
    ):
        write_synthetic_trace(tmp_path / shipped_trace_name(trace), trace)
    (tmp_path / "README.md").write_text("not a trace")
    (tmp_path / "v1.17.0.lto-off.cgu-16.jobs-2.json").write_text("{broken")  # of a ref not asked for: never read
    assert [s.path.name for s in shipped_traces(tmp_path)] == [
        "v1.17.0.lto-off.cgu-16.jobs-1.json",
        "v1.17.0.lto-off.cgu-16.jobs-2.json",
        "v1.19.0.lto-off.cgu-16.jobs-1.json",
        "v1.19.0.lto-off.cgu-16.jobs-2.json",
    ]
    chosen = load_shipped(tmp_path, "v1.19.1")
    assert [t.settings.jobs for t in chosen.traces] == [1, 2]
    assert chosen.note == "v1.19.1 has no build trace: advising from the nearest traced release, v1.19.0"
    assert chosen.borrowed is None


def test_a_shipped_ref_without_a_pair_borrows_the_nearest_shipped_pair(tmp_path: Path) -> None:
    for trace in (
        synthetic_build(ref="v1.17.0"),
        synthetic_build(ref="v1.18.0", lto="thin"),  # no pair: nothing to borrow from it
        synthetic_build(ref="v1.19.0"),
        synthetic_build(ref="v1.19.0", jobs=2),
    ):
        write_synthetic_trace(tmp_path / shipped_trace_name(trace), trace)
    chosen = load_shipped(tmp_path, "v1.17.0")
    assert [t.ref for t in chosen.traces] == ["v1.17.0"] and chosen.note is None
    assert chosen.borrowed is not None and chosen.borrowed.source.startswith("v1.19.0 jobs=2")
    advice = advise_settings(chosen.traces, budget_bytes=10 * GB, margin_percent=0, cpus=2, borrowed=chosen.borrowed)
    assert "extra codegen threads from v1.19.0 jobs=2" in advice.notes[0]


def test_no_shipped_traces_is_a_missing_resource_that_names_trace(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="ships no build traces yet: pass --trace FILE"):
        load_shipped(tmp_path, "v1.19.0")


def test_a_shipped_trace_whose_name_lies_is_a_damaged_installation(tmp_path: Path) -> None:
    write_synthetic_trace(tmp_path / "v1.19.0.lto-thin.cgu-16.jobs-1.json", synthetic_build())
    with pytest.raises(EnvironmentProblem, match=r"holds v1\.19\.0\.lto-off\.cgu-16\.jobs-1\.json"):
        load_shipped(tmp_path, "v1.19.0")
