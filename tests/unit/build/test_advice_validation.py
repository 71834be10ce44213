"""Predictions are checked only against builds they were not made from (synthetic traces: test doubles)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.build.advice_validation import (
    MeasuredBuild,
    NotValidated,
    ValidatedPrediction,
    measured_builds,
    validate,
)
from harness.build.schedule import simulate
from harness.build.trace import LtoMode, Trace
from tests.support.traces import GB, synthetic_trace, synthetic_unit, write_synthetic_trace


def _pair(lto: LtoMode, *, heavy: float) -> tuple[Trace, Trace]:
    """A one-job and a two-job trace of one setting: the heavy unit ran alone at two jobs, faster and heavier."""
    one = synthetic_trace(
        [
            synthetic_unit("a-1", start=0, end=10, metadata_ready=2),
            synthetic_unit("app-1", kind="bin", start=10, end=30, peak_rss_bytes=int(heavy * GB), deps=["a-1"]),
        ],
        lto=lto,
    )
    two = synthetic_trace(
        [
            synthetic_unit("a-1", start=0, end=6, metadata_ready=2),
            synthetic_unit("app-1", kind="bin", start=6, end=18, peak_rss_bytes=int(heavy * 1.1 * GB), deps=["a-1"]),
        ],
        jobs=2,
        lto=lto,
    )
    return one, two


def _measured(trace: Trace, *, peak: int | None = None, anon: int | None = None) -> MeasuredBuild:
    settings = trace.settings
    return MeasuredBuild(
        label=f"synthetic/{settings.lto}-{settings.jobs}",
        ref=str(trace.ref),
        target=trace.target,
        lto=settings.lto,
        codegen_units=settings.codegen_units,
        jobs=settings.jobs,
        compile_seconds=trace.wall_seconds + 5,
        peak_rss_bytes=peak,
        peak_cgroup_anon_bytes=anon,
        trace=trace,
    )


def test_a_build_is_predicted_without_its_own_trace_or_any_of_its_setting_and_jobs() -> None:
    off_one, off_two = _pair("off", heavy=2)
    thin_one, thin_two = _pair("thin", heavy=3)
    twin = synthetic_trace(list(off_two.units), jobs=2, lto="off")  # another build of the same setting and jobs

    [check] = validate([off_one, off_two, twin, thin_one, thin_two], [_measured(off_two)])

    assert isinstance(check, ValidatedPrediction)
    assert check.source.cost_trace is off_one
    assert check.calibration is not None
    assert "lto=thin" in check.calibration.source, "the calibration came from the other setting's pair"
    expected = simulate(off_one, 2, check.calibration)
    assert (check.predicted_peak_bytes, check.predicted_wall_seconds) == (expected.peak_bytes, expected.wall_seconds)


def test_errors_are_against_each_measured_figure_and_the_traced_span() -> None:
    one, two = _pair("off", heavy=2)
    thin_one, thin_two = _pair("thin", heavy=3)
    build = _measured(two, peak=4 * GB, anon=2 * GB)

    [check] = validate([one, thin_one, thin_two], [build])

    assert isinstance(check, ValidatedPrediction)
    assert check.peak_error_vs_rss == pytest.approx(check.predicted_peak_bytes / (4 * GB) - 1)
    assert check.peak_error_vs_cgroup_anon == pytest.approx(check.predicted_peak_bytes / (2 * GB) - 1)
    assert check.measured_wall_seconds == two.wall_seconds, "the traced span, not the compile step around it"


def test_one_job_builds_are_not_checked_and_a_setting_with_no_other_trace_is_said_not_predicted() -> None:
    one, two = _pair("fat", heavy=5)

    [check] = validate([one, two], [_measured(one), _measured(two)])
    assert isinstance(check, ValidatedPrediction)
    assert check.measured.jobs == 2
    assert check.calibration is None, "the only pair of its setting includes the build itself"

    assert validate([two], [_measured(two)]) == [
        NotValidated(measured=_measured(two), reason="no other trace of its setting")
    ]


def test_a_profile_report_gives_its_traced_and_untraced_builds(tmp_path: Path) -> None:
    one, _ = _pair("off", heavy=2)
    (tmp_path / "j1").mkdir()
    write_synthetic_trace(tmp_path / "j1" / "trace.json", one)
    profiles = [
        {"name": "j1", "ok": True, "build_args": {}, "compile_seconds": 40.0, "peak_rss_bytes": 3 * GB},
        {
            "name": "old",
            "ok": True,
            "build_args": {"CARGO_BUILD_JOBS": "2", "CARGO_PROFILE_RELEASE_LTO": "true"},
            "rustc_flags": {"codegen-units": ["1"]},
            "compile_seconds": 50.0,
            "peak_rss_bytes": 5 * GB,
            "peak_cgroup_anon_bytes": 4 * GB,
        },
        {"name": "defaults", "ok": True, "build_args": {}, "compile_seconds": 60.0},
        {"name": "broken", "ok": False, "build_args": {"CARGO_BUILD_JOBS": "2"}, "compile_seconds": 1.0},
    ]
    (tmp_path / "profile.json").write_text(json.dumps({"ref": "v1.19.0", "profiles": profiles}))

    builds = measured_builds(tmp_path)

    assert [(b.label.split("/")[1], b.lto, b.codegen_units, b.jobs, b.trace is not None) for b in builds] == [
        ("j1", "off", 16, 1, True),
        ("old", "fat", 1, 2, False),
    ], "a build whose knobs were left to the Dockerfile's defaults is not guessed at"


def test_a_profile_left_to_the_dockerfiles_defaults_is_read_with_the_knobs_the_caller_names(tmp_path: Path) -> None:
    profiles = [{"name": "defaults", "ok": True, "build_args": {}, "compile_seconds": 60.0, "peak_rss_bytes": GB}]
    (tmp_path / "profile.json").write_text(json.dumps({"ref": "v1.19.0", "profiles": profiles}))

    [build] = measured_builds(tmp_path, assumed={"defaults": ("off", 16, 2)})

    assert (build.lto, build.codegen_units, build.jobs, build.compile_seconds) == ("off", 16, 2, 60.0)


def test_a_ref_without_its_own_pair_is_predicted_with_the_nearest_refs_calibration() -> None:
    older_one, older_two = (dataclasses.replace(t, ref="v1.17.0") for t in _pair("off", heavy=2))
    newer_one, newer_two = _pair("off", heavy=2)

    [check] = validate([older_one, newer_one, newer_two], [_measured(older_two)])

    assert isinstance(check, ValidatedPrediction)
    assert check.source.cost_trace is older_one, "unit costs only from its own ref"
    assert check.calibration is not None and check.calibration.source.startswith("v1.19.0 jobs=2")
