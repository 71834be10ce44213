"""Knob profiles, cgroup reading, figures from samples, and the report a profile run renders.

No Docker here: the builds are represented by `BuildReport`s made from synthetic samples, and
the cgroup tree is a test double laid out like the kernel's (v1 and v2).
"""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path
from xml.etree import ElementTree

import pytest
from rich.console import Console

from harness.build.docker_engine import cache_records
from harness.build.measure import ProfileReport, ProfileRun, load_profile_report
from harness.build.plan import isolate_cache_mounts
from harness.build.runner import BuildReport, Check
from harness.build.sampler import CgroupMemory, Sample, SamplerReport, figures
from harness.cli.main import main
from harness.config.pins import load_pins, newest_applying_pin
from harness.config.profiles import BASELINE, Profile, builtin_profiles, configured_profiles, select_profiles
from harness.errors import BadInput
from harness.report.builds import profile_markdown, profile_table, rows, write_profile_outputs
from harness.report.render import rich_table

GB = 1_000_000_000


# -- profiles -------------------------------------------------------------------------------------


def test_builtin_profiles_say_what_each_knob_is() -> None:
    profiles = builtin_profiles(cpus=8)
    assert list(profiles) == ["low-ram", "ci", "fat-lto"], "upstream is made from the ref's own Cargo.toml"
    assert profiles["low-ram"].build_args == {}, "low-ram is the patch's own defaults: no knob overridden"
    assert profiles["ci"].build_args == {
        "CARGO_BUILD_JOBS": "1",
        "CARGO_PROFILE_RELEASE_LTO": "false",
        "MAS_BUILD_TARGETS": "x86_64-unknown-linux-gnu",
    }
    upstream = profiles["fat-lto"].build_args
    assert upstream["CARGO_BUILD_JOBS"] == "8"
    assert upstream["CARGO_PROFILE_RELEASE_LTO"] == "fat"
    assert upstream["CARGO_PROFILE_RELEASE_CODEGEN_UNITS"] == "1"


def test_profiles_from_the_pins_file(tmp_path: Path) -> None:
    text = '[profiles.sixteen-gb]\ndescription = "16 GB"\nbuild_args = { CARGO_BUILD_JOBS = "4" }\n'
    profiles = {**builtin_profiles(cpus=2), **configured_profiles(tomllib.loads(text), source="pins.toml")}
    assert profiles["sixteen-gb"] == Profile(
        name="sixteen-gb", description="16 GB", build_args={"CARGO_BUILD_JOBS": "4"}
    )
    assert [p.name for p in select_profiles(profiles, ["sixteen-gb", "ci", "sixteen-gb"])] == ["sixteen-gb", "ci"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[profiles.ci]\nbuild_args = { CARGO_BUILD_JOBS = "4" }\n', "built-in profile"),
        ("[profiles.x]\nbuild_args = { CARGO_BUILD_JOBS = 4 }\n", "must map build arg names to strings"),
        ('[profiles.x]\nbuild_args = { "NOT-A-NAME" = "1" }\n', "must map build arg names to strings"),
        ("[profiles.Upper]\n", "lower case"),
    ],
)
def test_bad_profiles_are_refused_with_the_table_named(table: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        configured_profiles(tomllib.loads(table), source="pins.toml")


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(BadInput, match="unknown profile 'huge'; known: low-ram, ci, fat-lto"):
        select_profiles(builtin_profiles(), ["huge"])


def test_default_ref_is_the_newest_pin_its_variant_applies_to() -> None:
    assert newest_applying_pin(load_pins()) == "v1.19.0"


# -- cold target directory ------------------------------------------------------------------------


def test_target_cache_mounts_get_their_own_id_and_nothing_else_changes() -> None:
    dockerfile = (
        b"RUN --network=default \\\n"
        b"  --mount=type=cache,target=/root/.cargo/registry \\\n"
        b"  --mount=type=cache,target=/app/target \\\n"
        b"  cargo build\n"
        b"RUN --mount=type=cache,id=mine,target=/app/target true\n"
    )
    isolated = isolate_cache_mounts(dockerfile, namespace="ns1")
    assert isolated == dockerfile.replace(
        b"--mount=type=cache,target=/app/target ", b"--mount=type=cache,target=/app/target,id=ns1/app/target "
    )
    assert b"target=/root/.cargo/registry \\" in isolated, "the registry cache stays shared (may be warm)"
    assert b"id=mine,target=/app/target true" in isolated, "an id the Dockerfile chose is left alone"


# -- cgroups (a tree double shaped like /proc and /sys/fs/cgroup) ---------------------------------


def _cgroup_double(tmp_path: Path, *, version: int) -> CgroupMemory:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "42").mkdir(parents=True)
    if version == 1:
        (proc / "42" / "cgroup").write_text("4:memory:/docker/buildkit/abc\n0::/docker/buildkit/abc\n")
        group = root / "memory" / "docker" / "buildkit" / "abc"
        group.mkdir(parents=True)
        (group / "memory.usage_in_bytes").write_text("3000\n")
        (group / "memory.max_usage_in_bytes").write_text("5000\n")
        (group / "memory.stat").write_text("cache 1000\nrss 2000\ntotal_cache 1000\ntotal_rss 2000\n")
    else:
        (proc / "42" / "cgroup").write_text("0::/system.slice/buildkit/abc\n")
        group = root / "system.slice" / "buildkit" / "abc"
        group.mkdir(parents=True)
        (group / "memory.current").write_text("3000\n")
        (group / "memory.peak").write_text("5000\n")
        (group / "memory.stat").write_text("anon 2000\nfile 1000\n")
    return CgroupMemory(proc_root=proc, cgroup_root=root)


@pytest.mark.parametrize("version", [1, 2])
def test_cgroup_memory_of_a_process_in_either_version(tmp_path: Path, version: int) -> None:
    memory = _cgroup_double(tmp_path, version=version)
    found = memory.cgroup_dir(42)
    assert found is not None and found[1] == version
    assert memory.read(*found) == (3000, 2000, 5000)
    assert memory.cgroup_dir(43) is None, "a process that is gone has no cgroup"


def test_a_removed_cgroup_reads_as_none(tmp_path: Path) -> None:
    memory = _cgroup_double(tmp_path, version=2)
    found = memory.cgroup_dir(42)
    assert found is not None
    for child in found[0].iterdir():
        child.unlink()
    assert memory.read(*found) is None


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


def _run(name: str, build_args: dict[str, str], samples: list[Sample], *, size: int, ok: bool = True) -> ProfileRun:
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
    )
    profile = Profile(name=name, description=name, build_args=build_args)
    return ProfileRun(profile=profile, build=build)


def _report() -> ProfileReport:
    runs = (
        _run("ci", {"CARGO_BUILD_JOBS": "1"}, _samples(1 * GB, cgroup=2 * GB), size=60_000_000),
        _run(BASELINE, {"CARGO_BUILD_JOBS": "2"}, _samples(4 * GB, rustc=2, cgroup=5 * GB), size=40_000_000),
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


def test_cache_records_are_read_from_buildx_du_verbose() -> None:
    listing = (
        "ID:\t\tabc123\nParent:\t\tp\nSize:\t\t1MB\n"
        'Description:\tcached mount /app/target from exec /bin/sh -c cargo build with id "/ns1/app/target"\n'
        "Type:\t\texec.cachemount\n\n"
        "ID:\t\tdef456\nDescription:\tmount / from exec /bin/sh -c apt-get update\n"
    )
    records = cache_records(listing)
    assert records == {
        "abc123": 'cached mount /app/target from exec /bin/sh -c cargo build with id "/ns1/app/target"',
        "def456": "mount / from exec /bin/sh -c apt-get update",
    }
