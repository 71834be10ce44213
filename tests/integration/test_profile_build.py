"""`profile` for real on the stand-in source tree (a test double shaped like MAS): one build per knob
profile from the same cache state, sampled from the host, reported as JSON, Markdown and a plot.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness.build.docker_engine import Engine, cache_records
from harness.build.trace import load_trace
from harness.cli.main import main


@pytest.mark.integration
def test_profile_of_the_standin_reports_each_profile_from_its_samples(
    engine: Engine, bundle: Path, tmp_path: Path
) -> None:
    report_dir = tmp_path / "profile"
    argv = [
        "profile",
        "--upstream",
        str(bundle),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--report-dir",
        str(report_dir),
    ]
    argv += ["--interval", "0.1", "--profile", "ci", "--profile", "upstream", "--profile", "low-ram"]
    assert main(argv) == 0

    for name in ("profile.json", "profile.md", "memory.png", "memory.svg"):
        assert (report_dir / name).stat().st_size > 0, name
    report = json.loads((report_dir / "profile.json").read_text())
    assert report["ref"] == "v1.19.0", "the newest pin (its variant: v1.18+)"
    assert [p["name"] for p in report["profiles"]] == ["ci", "upstream", "low-ram"]
    by_name = {p["name"]: p for p in report["profiles"]}
    for profile in report["profiles"]:
        samples = profile["samples"]
        assert profile["ok"], profile["checks"]
        assert profile["sample_count"] == len(samples) > 0
        assert profile["peak_rss_bytes"] == max(s["rss_bytes"] for s in samples) > 0
        assert profile["max_concurrent_rustc"] == max(s["rustc"] for s in samples) >= 1
        assert profile["binary_size_bytes"] > 0
        assert profile["binaries"] == ["mas-cli"], "the v1.18+ shape: the TARGETARCH binary only"
        assert any("given id mas-harness-build-" in d for d in profile["deviations"]), "the target dir starts empty"
        # Every profile build is traced from inside the build: its trace.json beside its report, named here.
        assert profile["trace"]["file"] == str(report_dir / profile["name"] / "trace.json")
        trace = load_trace(Path(profile["trace"]["file"]))
        assert trace.build_args == profile["build_args"]
        assert max(unit.end for unit in trace.units) == trace.wall_seconds > 0
        if Path("/sys/fs/cgroup/memory").is_dir() or Path("/sys/fs/cgroup/cgroup.controllers").is_file():
            assert profile["cgroup_version"] in (1, 2)
            assert profile["peak_cgroup_bytes"] > 0
    assert by_name["ci"]["max_concurrent_rustc"] == 1
    assert by_name["upstream"]["rustc_flags"] == {"codegen-units": ["1"], "lto": ["fat"]}
    upstream_trace = load_trace(Path(by_name["upstream"]["trace"]["file"]))
    assert (upstream_trace.settings.lto, upstream_trace.settings.codegen_units) == ("fat", 1), "as the sampler saw"
    assert by_name["ci"]["rustc_flags"]["codegen-units"] == ["16"]
    assert by_name["low-ram"]["rustc_flags"]["codegen-units"] == ["16"], "the patch's default"
    assert by_name["upstream"]["ratios_to_baseline"]["peak_rss"] == 1.0
    assert by_name["ci"]["ratios_to_baseline"]["peak_rss"] == pytest.approx(
        by_name["ci"]["peak_rss_bytes"] / by_name["upstream"]["peak_rss_bytes"], abs=0.001
    )
    assert "| ci |" in (report_dir / "profile.md").read_text()
    listing = subprocess.run(["docker", "buildx", "du", "--verbose"], capture_output=True, text=True, check=True)
    namespaces = {
        d.split("given id ")[1].split("/app/target")[0]
        for p in report["profiles"]
        for d in p["deviations"]
        if "given id " in d
    }
    assert len(namespaces) == 3
    left = [text for text in cache_records(listing.stdout).values() if any(f"/{ns}/" in text for ns in namespaces)]
    assert left == [], "each profile's target cache is dropped once its figures are read"
