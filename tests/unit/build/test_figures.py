"""A build's figures by source: the host sampler (or why it saw nothing), the in-build trace (trace.json, here a test
double: `synthetic_trace`), and how the two are compared where both saw a build. No Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.analysis.patched import PatchedDockerfile
from harness.build.builders import BuilderFacts, plan_target
from harness.build.figures import NOT_TRACED, RUSAGE_GRANULARITY, BuildFigures, build_figures, in_build_figures
from harness.build.images import NOT_RUN_EXPORTED, ImageFacts
from harness.build.plan import PlanSource, plan_build
from harness.build.runner import BuildOutcome, judge, unseen_reason
from harness.build.sampler import SamplerReport, UnseenBuild
from harness.build.trace import Trace, UnitKind
from harness.build.tracing import TraceOutcome
from harness.knobs import CI_BUILD_ARGS
from harness.report.builds import figures_note
from tests.support import DockerfileTexts
from tests.support.traces import synthetic_trace, synthetic_unit, write_synthetic_trace

MB = 1_000_000


def trace_of(units: list[tuple[str, UnitKind, float, float, int]], *, cargo: int | None = 50 * MB) -> Trace:
    """A synthetic trace (a test double) of these (crate, kind, start, end, peak) units."""
    made = [
        synthetic_unit(f"{crate}-{index}", kind=kind, start=start, end=end, peak_rss_bytes=peak)
        for index, (crate, kind, start, end, peak) in enumerate(units)
    ]
    return synthetic_trace(made, cargo_peak_rss_bytes=cargo)


UNITS: list[tuple[str, UnitKind, float, float, int]] = [
    ("serde", "lib", 0.0, 2.0, 120 * MB),
    ("mas_cli", "build-script", 0.5, 1.0, 80 * MB),
    ("mas_cli", "build-script-run", 1.0, 1.2, 900 * MB),
    ("mas_cli", "bin", 2.0, 5.0, 300 * MB),
    ("serde", "lib", 4.0, 4.5, 130 * MB),
]


def _sampler(peaks: dict[str, int], max_rustc: int = 1) -> SamplerReport:
    return SamplerReport(
        peak_rss_bytes=max(peaks.values(), default=0),
        max_concurrent_rustc=max_rustc,
        rustc_flags={},
        peak_rustc_crate=None,
        peak_rustc_crate_rss_bytes=0,
        wall_seconds=5.0,
        interval_seconds=0.25,
        rustc_peaks=peaks,
    )


def test_the_trace_gives_each_rustcs_kernel_peak_cargos_peak_and_the_build_span() -> None:
    figures = in_build_figures(trace_of(UNITS), file="trace.json")
    assert figures.rustc_peaks == {"serde": 130 * MB, "mas_cli": 300 * MB}, "a build script's run is not a rustc"
    assert (figures.peak_rustc_crate, figures.peak_rustc_rss_bytes) == ("mas_cli", 300 * MB)
    assert figures.cargo_peak_rss_bytes == 50 * MB
    assert (figures.start, figures.end, figures.wall_seconds) == (0.0, 5.0, 5.0)
    assert figures.max_concurrent_rustc == 2, "serde's lib and mas_cli's build script overlapped"


def test_a_trace_that_is_missing_or_broken_says_why_there_are_no_trace_figures(tmp_path: Path) -> None:
    sampler = _sampler({})
    assert build_figures(sampler, None).trace_unavailable == NOT_TRACED
    failed = TraceOutcome(file=None, records_file=None, error="the build failed")
    assert build_figures(sampler, failed).trace_unavailable == "the build failed"
    broken = tmp_path / "trace.json"
    broken.write_text("{not json")
    outcome = TraceOutcome(file=broken, records_file=None)
    assert "is not JSON" in str(build_figures(sampler, outcome).trace_unavailable)
    write_synthetic_trace(broken, trace_of(UNITS))
    read = build_figures(sampler, outcome)
    assert read.trace is not None and read.trace.file == str(broken)
    assert read.memory_source == "in-build trace"


def test_an_unseen_build_reports_its_sampler_figures_as_unknown_never_zero() -> None:
    with UnseenBuild("it ran elsewhere", interval=0.5) as unseen:
        assert unseen.latest() is None and unseen.compiling() == ()
    report = unseen.report()
    data = report.as_json(with_samples=False)
    assert data["available"] is False and data["unavailable"] == "it ran elsewhere"
    assert data["peak_rss_bytes"] is None and data["max_concurrent_rustc"] is None
    figures = data["figures"]
    assert isinstance(figures, dict) and set(figures.values()) == {None}
    assert 0 not in figures.values()


def test_the_trace_is_the_memory_source_wherever_there_is_one() -> None:
    trace = in_build_figures(trace_of(UNITS), file="trace.json")
    unseen = UnseenBuild("elsewhere", interval=0.5).report()
    assert BuildFigures(sampler=unseen, trace=trace).memory_source == "in-build trace"
    assert BuildFigures(sampler=_sampler({"serde": MB}), trace=None).memory_source == "host sampler"
    nothing = BuildFigures(sampler=unseen, trace=None, trace_unavailable="not traced")
    assert nothing.memory_source is None
    assert nothing.as_json()["in_build_trace"] == {"available": False, "reason": "not traced"}
    assert "none" in figures_note(nothing)
    assert BuildFigures(sampler=unseen, trace=trace).agreement() is None, "one source: nothing to compare"


def test_a_sampler_below_the_trace_agrees_one_above_it_does_not() -> None:
    trace = in_build_figures(trace_of(UNITS), file="trace.json")
    missed_a_peak = BuildFigures(sampler=_sampler({"serde": 90 * MB, "mas_cli": 299 * MB}), trace=trace)
    agreed = missed_a_peak.agreement()
    assert agreed is not None and agreed.agree and agreed.crates_compared == 2
    assert "agree" in figures_note(missed_a_peak)
    rounding = BuildFigures(sampler=_sampler({"mas_cli": 300 * MB + RUSAGE_GRANULARITY}), trace=trace).agreement()
    assert rounding is not None and rounding.agree, "ru_maxrss is in KiB"
    over = BuildFigures(sampler=_sampler({"mas_cli": 301 * MB}), trace=trace)
    disagreed = over.agreement()
    assert disagreed is not None and not disagreed.agree
    assert disagreed.over == {"mas_cli": (301 * MB, 300 * MB)}
    assert "DISAGREE" in figures_note(over)
    too_many = BuildFigures(sampler=_sampler({}, max_rustc=3), trace=trace).agreement()
    assert too_many is not None and not too_many.agree


@pytest.fixture
def plan(dockerfile_texts: DockerfileTexts) -> Any:
    return plan_build(
        PlanSource(
            ref="v1.19.0",
            patched=PatchedDockerfile.read(dockerfile_texts("v1.19.0")[1].encode()),
            context=Path("/nonexistent"),
            source="standin",
            base_image=None,
        ),
        CI_BUILD_ARGS,
        run_id="0123456789ab",
    )


def _exported(marker_found: bool) -> ImageFacts:
    return ImageFacts(
        binaries=("mas-cli",),
        version_output=None,
        version_exit=None,
        build_info=None,
        not_run=NOT_RUN_EXPORTED,
        marker_in_binary=marker_found,
    )


def test_an_exported_image_is_checked_by_its_marker_not_by_running_it(plan: Any) -> None:
    outcome = BuildOutcome(succeeded=True, log_path=Path("build.log"), sampler=_sampler({}))
    checks = {check.name: check for check in judge(plan, outcome, _exported(True), standin=True)}
    assert checks["version"].skipped and checks["version"].detail == NOT_RUN_EXPORTED
    assert checks["marker"].ok
    assert "mas-harness-0123456789ab" in checks["marker"].detail
    assert not any(name.startswith("build-info") for name in checks), "an export cannot say what the binary prints"
    failed = {check.name: check for check in judge(plan, outcome, _exported(False), standin=True)}
    assert not failed["marker"].ok, "another build's binary"


def test_one_rustc_at_a_time_comes_from_the_trace_where_the_host_saw_nothing(plan: Any) -> None:
    remote = plan_target(
        BuilderFacts(name="farm", driver="remote", status="running", platforms=("linux/amd64",), endpoint="tcp://f"),
        named="farm",
        load=True,
        export=None,
    )
    unseen = UnseenBuild(unseen_reason(remote), interval=0.5).report()
    outcome = BuildOutcome(succeeded=True, log_path=Path("build.log"), sampler=unseen)
    facts = _exported(True)

    def one_rustc(figures: BuildFigures | None = None) -> Any:
        [check] = [c for c in judge(plan, outcome, facts, standin=False, figures=figures) if c.name.startswith("one-")]
        return check

    not_seen = one_rustc()
    assert not_seen.skipped and "process table" in not_seen.detail
    serial = in_build_figures(trace_of([("a", "lib", 0, 1, MB), ("b", "lib", 1, 2, MB)]), file="t")
    figures = BuildFigures(sampler=unseen, trace=serial)
    [traced] = [
        c for c in judge(plan, outcome, facts, standin=False, figures=figures) if c.name == "one-rustc-at-a-time"
    ]
    assert traced.ok and not traced.skipped and "in-build trace" in traced.detail
    parallel = in_build_figures(trace_of(UNITS), file="t")
    figures = BuildFigures(sampler=unseen, trace=parallel)
    two = one_rustc(figures)
    assert not two.ok
