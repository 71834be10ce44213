"""`build --trace` for real on the stand-in (a test double shaped like MAS): the builder stage of one release per
builder shape, traced from inside the build, and the same build untraced.

The trace must hold the stand-in's units with every dep resolved, and the wrapper must leave the build as it
was: the same `--version` but for the per-run marker, the same size within a few bytes, the same `build-info`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import docker

from harness.build.docker_engine import Engine
from harness.build.plan import TRACER_DEVIATIONS
from harness.build.trace import load_trace
from harness.cli.main import main

REFS = ("v1.17.0", "v1.19.0")
"""One release per builder shape: per-arch binaries (to v1.17), one TARGETARCH binary (from v1.18)."""
SIZE_SLACK = 64
"""Bytes a binary may differ by between two builds of the same source (the marker has the same length)."""


@pytest.fixture(scope="module", autouse=True)
def _remove_built_images(engine: Engine) -> Iterator[None]:
    before = {image.id for image in docker.image.list("mas-harness/builder")}
    yield
    made = [image.id for image in docker.image.list("mas-harness/builder") if image.id not in before]
    if made:
        docker.image.remove(made, force=True)


def _build(bundle: Path, cache: Path, report_dir: Path, ref: str, *, trace: bool) -> tuple[int, dict[str, Any]]:
    argv = [
        "build",
        "--ref",
        ref,
        "--upstream",
        str(bundle),
        "--cache-dir",
        str(cache),
        "--report-dir",
        str(report_dir),
    ]
    argv += ["--build-arg", "CARGO_BUILD_JOBS=2"]
    if trace:
        argv.append("--trace")
    code = main(argv)
    report = json.loads((report_dir / "report.json").read_text()) if (report_dir / "report.json").exists() else {}
    return code, report


@pytest.fixture(scope="module")
def builds(
    engine: Engine, bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, bool], tuple[int, dict[str, Any], Path]]:
    cache = tmp_path_factory.mktemp("cache")
    made = {}
    for ref in REFS:
        for trace in (False, True):
            report_dir = tmp_path_factory.mktemp(f"{ref}-{'traced' if trace else 'plain'}")
            code, report = _build(bundle, cache, report_dir, ref, trace=trace)
            made[ref, trace] = (code, report, report_dir)
    return made


@pytest.mark.integration
@pytest.mark.parametrize("ref", REFS)
def test_a_traced_build_writes_a_trace_of_the_standins_units(
    builds: dict[tuple[str, bool], tuple[int, dict[str, Any], Path]], ref: str
) -> None:
    code, report, report_dir = builds[ref, True]
    assert code == 0, report.get("checks")
    assert report["trace"]["file"] == str(report_dir / "trace.json")
    assert report["trace"]["problems"] == []
    trace = load_trace(report_dir / "trace.json")
    assert (trace.ref, trace.source) == (ref, "standin")
    assert trace.build_args == report["build_args"]
    kinds = {(unit.kind, unit.crate) for unit in trace.units}
    assert kinds == {
        ("lib", "mas_standin_json"),
        ("bin", "mas_cli"),
        ("build-script", "mas_cli"),
        ("build-script-run", "mas_cli"),
    }
    ids = {unit.id for unit in trace.units}
    assert all(dep in ids for unit in trace.units for dep in unit.deps), "every dep resolves"
    last = max(trace.units, key=lambda unit: unit.end)
    assert (last.kind, last.crate) == ("bin", "mas_cli"), "mas-cli's binary is the last unit to finish"
    assert all(unit.peak_rss_bytes > 0 for unit in trace.units)
    assert trace.settings.jobs == 2
    assert trace.cargo_peak_rss_bytes is not None and trace.cargo_peak_rss_bytes > 0
    rustc = [unit for unit in trace.units if unit.kind != "build-script-run"]
    assert report["trace"]["peak_rustc_rss_bytes"] == max(unit.peak_rss_bytes for unit in rustc)
    assert list(TRACER_DEVIATIONS) == report["deviations"][-len(TRACER_DEVIATIONS) :]
    assert any(check["name"] == "trace" and check["ok"] for check in report["checks"])


@pytest.mark.integration
@pytest.mark.parametrize("ref", REFS)
def test_the_wrapper_leaves_the_binary_as_it_was(
    builds: dict[tuple[str, bool], tuple[int, dict[str, Any], Path]], ref: str
) -> None:
    (plain_code, plain, _), (traced_code, traced, _) = builds[ref, False], builds[ref, True]
    assert (plain_code, traced_code) == (0, 0)
    assert plain["trace"] is None and not any(d in plain["deviations"] for d in TRACER_DEVIATIONS)

    def unmarked(report: dict[str, Any]) -> str:
        return str(report["version_output"]).replace(report["build_args"]["VERGEN_GIT_DESCRIBE"], "MARKER")

    assert unmarked(traced) == unmarked(plain) == "mas-cli MARKER (stand-in)"
    assert abs(traced["binary_size_bytes"] - plain["binary_size_bytes"]) <= SIZE_SLACK

    def info(report: dict[str, Any]) -> dict[str, Any]:
        built = dict(report["build_info"])
        built["env"] = {k: v for k, v in built["env"].items() if k != "VERGEN_GIT_DESCRIBE"}
        return built

    assert info(traced) == info(plain), "the build script ran (through the shim) and saw what it sees untraced"
