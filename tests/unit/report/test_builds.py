"""A profile run's report: figures from samples, ratios against upstream, its JSON, table, Markdown and plots, and
`profile --from-report` rendering it."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
from rich.console import Console

from harness.build.measure import ProfileReport, ProfileRun, load_profile_report
from harness.build.runner import BuildReport, Check
from harness.build.sampler import Sample, SamplerReport, figures
from harness.build.tracing import TraceOutcome
from harness.cli.main import main
from harness.config.profiles import BASELINE, Profile
from harness.report.builds import (
    build_outcome,
    profile_markdown,
    profile_outcome,
    profile_table,
    rows,
    write_profile_outputs,
)
from harness.report.render import rich_table

GB = 1_000_000_000


# -- figures and the report -----------------------------------------------------------------------


def _samples(peak_rss: int, *, rustc: int = 1, cgroup: int | None = None) -> list[Sample]:
    shape = [0.0, 0.25, 1.0, 0.5, 0.0]
    return [
        Sample(
            t=float(index),
            rss_bytes=int(peak_rss * share),
            rustc=rustc if share else 0,
            cargo=1 if share else 0,
            cgroup_bytes=None if cgroup is None else int(cgroup * share),
            cgroup_anon_bytes=None if cgroup is None else int(cgroup * share * 0.8),
            cgroup_peak_bytes=None if cgroup is None else int(cgroup * 1.1),
        )
        for index, share in enumerate(shape)
    ]


def _run(  # noqa: PLR0913  # every part of a test double build, keyword-only but the first three
    name: str,
    build_args: dict[str, str],
    samples: list[Sample],
    *,
    size: int,
    ok: bool = True,
    trace: TraceOutcome | None = None,
) -> ProfileRun:
    sampler = SamplerReport(
        peak_rss_bytes=0,  # deliberately wrong: the figures must come from the samples, not from here
        max_concurrent_rustc=0,
        rustc_flags={"codegen-units": ["16"], "lto": []},
        peak_rustc_crate="mas_cli",
        peak_rustc_crate_rss_bytes=max(s.rss_bytes for s in samples),
        wall_seconds=100.0 if name == BASELINE else 50.0,
        interval_seconds=0.5,
        cgroup_version=1,
        samples=samples,
    )
    build = BuildReport(
        ref="v1.17.0",
        source="standin",
        image=None,
        build_args={**build_args, "VERGEN_GIT_DESCRIBE": "x"},
        air_gapped=True,
        deviations=(),
        binaries=("mas-cli-amd64",),
        version_output="mas-cli 0",
        build_info=None,
        sampler=sampler,
        log="build.log",
        checks=(Check(name="build", ok=ok, detail=""),),
        binary_size_bytes=size,
        trace=trace,
    )
    profile = Profile(name=name, description=name, build_args=build_args)
    return ProfileRun(profile=profile, build=build)


SYNTHETIC_TRACE = TraceOutcome(
    file=Path("reports/profile/ci/trace.json"),
    records_file=Path("reports/profile/ci/trace-records.jsonl"),
    figures={"units": 552, "peak_rustc_crate": "mas_cli", "peak_rustc_rss_bytes": 2 * GB, "cargo_peak_rss_bytes": GB},
)
"""What a traced profile build's report says of its trace (a test double: no such file)."""


def _report() -> ProfileReport:
    runs = (
        _run("ci", {"CARGO_BUILD_JOBS": "1"}, _samples(1 * GB, cgroup=2 * GB), size=60_000_000, trace=SYNTHETIC_TRACE),
        _run(
            BASELINE,
            {"CARGO_BUILD_JOBS": "2"},
            _samples(4 * GB, rustc=2, cgroup=5 * GB),
            size=40_000_000,
            trace=TraceOutcome(file=None, records_file=None, error="the build failed"),
        ),
    )
    return ProfileReport(
        ref="v1.17.0",
        source="standin",
        interval_seconds=0.5,
        cache_state="cold",
        machine={"cpus": 2, "memory_bytes": 24 * GB, "kernel": "6.1"},
        runs=runs,
    )


def test_figures_are_read_off_the_samples() -> None:
    samples = _samples(4 * GB, rustc=2, cgroup=5 * GB)
    result = figures(samples)
    assert result.peak_rss_bytes == max(s.rss_bytes for s in samples) == 4 * GB
    assert result.peak_rss_t == 2.0
    assert result.peak_cgroup_bytes == int(5 * GB * 1.1), "the kernel's high-water mark beats the sampled usage"
    assert result.peak_cgroup_anon_bytes == int(5 * GB * 0.8)
    assert result.max_concurrent_rustc == 2
    assert result.compile_seconds == 2.0, "first to last sample with a rustc or cargo"
    assert result.sample_count == 5
    empty = figures([])
    assert (empty.peak_rss_bytes, empty.peak_cgroup_bytes, empty.compile_seconds) == (0, None, 0.0)


def test_ratios_are_against_upstream() -> None:
    report = _report()
    ci = report.runs[0]
    assert report.ratios(ci) == {
        "peak_rss": 0.25,
        "peak_cgroup": 0.4,
        "peak_cgroup_anon": 0.4,
        "wall": 0.5,
        "binary_size": 1.5,
    }
    assert report.ratios(report.runs[1])["peak_rss"] == 1.0
    without_baseline = ProfileReport(**{**vars(report), "runs": report.runs[:1]})
    assert without_baseline.ratios(ci) == {}


def test_report_json_structure_and_that_its_figures_come_from_its_samples() -> None:
    data = json.loads(json.dumps(_report().as_json()))
    assert {"ref", "source", "ok", "interval_seconds", "cache_state", "machine", "baseline", "profiles"} <= data.keys()
    assert data["baseline"] == BASELINE
    for profile in data["profiles"]:
        samples = profile["samples"]
        assert profile["sample_count"] == len(samples)
        assert profile["peak_rss_bytes"] == max(s["rss_bytes"] for s in samples)
        assert profile["max_concurrent_rustc"] == max(s["rustc"] for s in samples)
        assert profile["peak_cgroup_anon_bytes"] == max(s["cgroup_anon_bytes"] for s in samples)
        assert profile["peak_cgroup_bytes"] == max(max(s["cgroup_bytes"], s["cgroup_peak_bytes"]) for s in samples)
        assert {"peak_rss", "peak_cgroup", "wall", "binary_size"} <= profile["ratios_to_baseline"].keys()


def test_table_rows_show_ratios_except_on_the_baseline() -> None:
    ci, upstream = list(rows(_report()))
    assert ci[0] == "ci" and "CARGO_BUILD_JOBS=1" in ci[1]
    assert ci[4] == "1.00 GB (x0.25)"
    assert upstream[4] == "4.00 GB"
    assert "VERGEN_GIT_DESCRIBE" not in ci[1], "only the profile's own knobs are shown"


@pytest.mark.parametrize("width", [80, 100, 200])
def test_the_table_fits_the_terminal_without_breaking_a_cell(width: int) -> None:
    console = Console(width=width, record=True, file=io.StringIO())
    table = profile_table(_report())
    console.print(rich_table(table, console.width))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width
    body = [line for line in lines if line.strip()][-len(table.rows) :]
    assert [line.split()[0] for line in body] == [run.profile.name for run in _report().runs]
    assert all(line.rstrip().endswith(("ok", "failed")) for line in body), body
    if width == 200:
        assert "binary" in lines[1] + lines[2] + lines[3]


def test_markdown_and_plots_are_written_and_valid(tmp_path: Path) -> None:
    report = _report()
    written = write_profile_outputs(report, tmp_path)
    assert sorted(p.name for p in written) == ["memory.png", "memory.svg", "profile.md"]
    assert (tmp_path / "memory.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = ElementTree.parse(tmp_path / "memory.svg").getroot()
    assert svg.tag.endswith("svg")
    markdown = (tmp_path / "profile.md").read_text()
    assert markdown == profile_markdown(report, plot="memory.png")
    table_lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table_lines) == 2 + len(report.runs)
    assert len({line.count("|") for line in table_lines}) == 1, "every row has as many cells as the header"


def test_a_written_report_reads_back_and_renders_the_same(tmp_path: Path) -> None:
    report = _report()
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(report.as_json()))
    again = load_profile_report(path)
    assert list(rows(again)) == list(rows(report))
    assert [run.build.trace for run in again.runs] == [run.build.trace for run in report.runs]


def test_each_profiles_trace_is_named_in_the_profile_report() -> None:
    report = _report()
    profiles = report.as_json()["profiles"]
    assert isinstance(profiles, list)
    assert profiles[0]["trace"]["file"] == "reports/profile/ci/trace.json"
    assert profiles[1]["trace"]["error"] == "the build failed"
    notes = profile_outcome(report, written=[]).notes
    assert "ci: trace reports/profile/ci/trace.json" in notes
    assert f"{BASELINE}: trace none: the build failed" in notes


def test_profile_cli_renders_from_a_report_and_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(_report().as_json()))
    assert main(["profile", "--from-report", str(path), "--report-dir", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "memory.svg").is_file()
    (tmp_path / "broken.json").write_text("{}")
    assert main(["profile", "--from-report", str(tmp_path / "broken.json")]) == 2
    assert main(["profile", "--profile", "huge"]) == 2
    assert main(["profile", "--interval", "0"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert any("not a profile report" in line for line in errors)
    assert any("unknown profile 'huge'" in line for line in errors)
    assert any("--interval must be a positive" in line for line in errors)


def test_a_traced_builds_report_says_where_the_trace_is_beside_the_samplers_figures() -> None:
    build = _run("ci", {}, _samples(1 * GB), size=1, trace=SYNTHETIC_TRACE).build
    notes = build_outcome(build, report_file=Path("report.json")).notes
    assert "trace: reports/profile/ci/trace.json (552 units)" in notes
    assert "heaviest rustc, kernel's count at exit: mas_cli 2.00 GB (sampler: mas_cli 1.00 GB)" in notes
    assert "cargo's peak RSS (VmHWM): 1.00 GB (sampler, rustc+cargo together: 0.0 MB)" in notes
    assert (
        build_outcome(dataclasses.replace(build, trace=None), report_file=Path("r.json")).notes[-1] == "report: r.json"
    )
