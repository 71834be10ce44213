"""`build --builder NAME` and `profile --builder NAME` on the second test engine: a BuildKit that is not the local
engine's, reached through its docker context, whose build processes the host sampler does not count.

The stand-in's final stage of STANDIN_RELEASE is built there; every image check runs where the image is (the second
engine), the first engine gets none of it unless `--load` is given, and nothing of the harness's is left on either
engine afterwards.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import DockerClient, docker

from harness.build.docker_engine import Engine, cache_records
from harness.cli.main import main
from tests.support import STANDIN_RELEASE, HarnessBuild
from tests.support.second_engine import NAME_PREFIX, SecondTestEngine

pytestmark = pytest.mark.integration

ALL_CHECKS = {
    "build",
    "binaries",
    "one-rustc-at-a-time",
    "version",
    "final build",
    "final binary",
    "final entrypoint and user",
    "final version",
    "final build-info",
}


def _run(argv: list[str], report_dir: Path) -> tuple[int, dict[str, Any]]:
    code = main(argv)
    report_file = report_dir / "report.json"
    return code, json.loads(report_file.read_text()) if report_file.exists() else {}


def _namespaces(report: dict[str, Any]) -> set[str]:
    deviations = report.get("deviations", [])
    return {d.split("given id ")[1].split("/app/target")[0] for d in deviations if "given id " in d}


def _left_caches(context: str | None, namespaces: set[str]) -> list[str]:
    argv = ["docker", *(["--context", context] if context else []), "buildx", "du", "--verbose"]
    listing = subprocess.run(argv, capture_output=True, text=True, check=True)
    return [text for text in cache_records(listing.stdout).values() if any(f"/{ns}/" in text for ns in namespaces)]


def _images_of(report: dict[str, Any]) -> list[str]:
    final = report.get("final") or {}
    return [tag for tag in (report.get("image"), final.get("image")) if tag]


def _harness_images(client: DockerClient) -> set[str]:
    return {
        tag
        for image in client.image.list()
        for tag in image.repo_tags or []
        if tag.startswith(("mas-harness/builder:", "mas-harness/mas:"))
    }


@pytest.fixture
def remote_build(
    engine: Engine, second_test_engine: SecondTestEngine, bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """`mas-harness build --builder <the second engine> ...`; what it made is removed from both engines after."""
    made: list[dict[str, Any]] = []
    cache = tmp_path_factory.mktemp("remote-cache")

    def build(*extra: str, stage: str = "final", builder: str | None = None) -> tuple[int, dict[str, Any], Path]:
        report_dir = tmp_path_factory.mktemp("remote-build")
        argv = ["build", "--ref", STANDIN_RELEASE, "--stage", stage, "--upstream", str(bundle)]
        argv += ["--cache-dir", str(cache), "--report-dir", str(report_dir)]
        argv += ["--builder", builder or second_test_engine.name, *extra]
        code, report = _run(argv, report_dir)
        made.append(report)
        return code, report, report_dir

    yield build
    tags = [tag for report in made for tag in _images_of(report)]
    for client in (second_test_engine.client, docker):
        present = [tag for tag in tags if client.image.exists(tag)]
        if present:
            client.image.remove(present, force=True)
    # Nothing of the harness's is left on either engine: no image and no target cache of these builds.
    namespaces = {ns for report in made for ns in _namespaces(report)}
    assert _harness_images(second_test_engine.client) == set()
    assert _left_caches(second_test_engine.name, namespaces) == []
    assert _left_caches(None, namespaces) == []
    assert not {tag for tag in tags if docker.image.exists(tag)}


def test_the_final_stage_builds_on_the_second_engine_and_is_checked_there(
    remote_build: Any, second_test_engine: SecondTestEngine
) -> None:
    code, report, report_dir = remote_build()
    checks = {check["name"]: check for check in report["checks"]}
    assert {name for name, check in checks.items() if not check["ok"]} == set(), checks
    assert set(checks) >= ALL_CHECKS
    assert report["binaries"] == ["mas-cli"]
    assert report["version_output"] == f"mas-cli {report['build_args']['VERGEN_GIT_DESCRIBE']} (stand-in)"
    assert report["final"]["binary_sha256"] in checks["final binary"]["detail"]
    assert report["final"]["entrypoint"] == ["/usr/local/bin/mas-cli"]
    assert report["final"]["user"] == "65532"
    assert code == 0
    # Built and checked on the second engine, through its docker context; the first holds nothing of it.
    assert report["builder"]["name"] == second_test_engine.name
    assert report["builder"]["driver"] == "docker"
    assert report["images"]["kind"] == "builder-engine"
    assert report["images"]["context"] == second_test_engine.name
    images = _images_of(report)
    assert len(images) == 2
    assert all(second_test_engine.client.image.exists(tag) for tag in images)
    assert not any(docker.image.exists(tag) for tag in images), "the first engine holds no image of this build"
    # The target cache was the build's own, on the second engine, and is pruned there.
    namespaces = _namespaces(report)
    assert len(namespaces) == 1
    assert _left_caches(second_test_engine.name, namespaces) == []
    # The host sampler did not see it: its figures are unknown, never zero.
    sampler = report["sampler"]
    assert sampler["available"] is False
    assert "process table" in sampler["unavailable"]
    assert sampler["peak_rss_bytes"] is None
    assert set(sampler["figures"].values()) == {None}
    figures = report["figures"]
    assert figures["host_sampler"]["available"] is False
    assert figures["buildkit_step"]["available"] is False
    assert (report_dir / "build.log").stat().st_size > 0


def test_on_the_second_engine_the_memory_figures_come_from_the_in_build_trace(remote_build: Any) -> None:
    code, report, _ = remote_build()
    assert code == 0
    figures = report["figures"]
    assert figures["memory_source"] == "in-build trace"
    trace = figures["in_build_trace"]
    assert trace["available"] is True
    assert trace["peak_rustc_rss_bytes"] > 0
    assert trace["peak_rustc_crate"] in trace["rustc_peaks"]
    assert trace["cargo_peak_rss_bytes"] > 0
    assert 0 <= trace["start"] < trace["end"]
    assert trace["max_concurrent_rustc"] == 1, "CARGO_BUILD_JOBS=1"
    assert figures["agreement"] is None, "one source only: the host saw nothing"
    assert any(d.startswith("trace:") for d in report["deviations"]), "traced without --trace: the host saw nothing"


def test_load_puts_the_images_into_the_first_engine_as_well(
    remote_build: Any, second_test_engine: SecondTestEngine
) -> None:
    code, report, _ = remote_build("--load", stage="builder")
    assert code == 0, report.get("checks")
    assert report["images"]["kind"] == "local-engine"
    assert report["images"]["copied_from"] == second_test_engine.name
    [image] = _images_of(report)
    assert docker.image.exists(image), "--load: the first engine holds the image"
    assert second_test_engine.client.image.exists(image)


def test_a_builder_that_cannot_be_used_is_one_line_and_leaves_nothing(
    remote_build: Any, second_test_engine: SecondTestEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, report_dir = remote_build(builder="no-such-builder")
    assert (code, report) == (2, {})
    assert not any(report_dir.iterdir()), "nothing written"
    code, report, report_dir = remote_build("--export", "oci")
    assert (code, report) == (3, {}), "the docker driver without containerd's image store cannot export"
    assert not any(report_dir.iterdir())
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("mas-harness: error:")]
    assert len(errors) == 2, stderr
    assert "buildx knows no such builder" in errors[0]
    assert "cannot export" in errors[1]
    assert "Traceback" not in stderr


def test_a_builder_whose_engine_is_down_is_exit_3(
    remote_build: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"{NAME_PREFIX}down"
    subprocess.run(["docker", "context", "rm", "--force", name], capture_output=True, check=False)
    subprocess.run(
        ["docker", "context", "create", name, "--docker", f"host=unix://{tmp_path / 'gone.sock'}"],
        capture_output=True,
        check=True,
    )
    try:
        code, report, report_dir = remote_build(builder=name)
    finally:
        subprocess.run(["docker", "context", "rm", "--force", name], capture_output=True, check=True)
    assert (code, report) == (3, {})
    assert not any(report_dir.iterdir())
    assert f"builder {name}" in capsys.readouterr().err


def test_profile_on_the_second_engine_marks_the_host_figures_unavailable(
    engine: Engine, second_test_engine: SecondTestEngine, bundle: Path, tmp_path: Path
) -> None:
    report_dir = tmp_path / "profile"
    argv = ["profile", "--upstream", str(bundle), "--cache-dir", str(tmp_path / "cache")]
    argv += ["--report-dir", str(report_dir), "--profile", "ci", "--builder", second_test_engine.name]
    assert main(argv) == 0
    report = json.loads((report_dir / "profile.json").read_text())
    [ci] = report["profiles"]
    assert ci["ok"], ci["checks"]
    assert ci["peak_rss_bytes"] is None
    assert ci["max_concurrent_rustc"] is None
    assert ci["samples"] == []
    assert ci["figures_by_source"]["host_sampler"]["available"] is False
    assert "n/a (not seen)" in (report_dir / "profile.md").read_text()
    namespaces = {d.split("given id ")[1].split("/app/target")[0] for d in ci["deviations"] if "given id " in d}
    assert _left_caches(second_test_engine.name, namespaces) == []
    assert _harness_images(second_test_engine.client) == set(), "profile removes each profile's image"


def test_on_the_local_engine_the_host_sampler_reports_the_build(harness_build: HarnessBuild) -> None:
    build = harness_build(STANDIN_RELEASE)
    figures = build.report["figures"]
    assert figures["host_sampler"]["available"] is True
    assert build.report["sampler"]["peak_rss_bytes"] > 0
    assert figures["memory_source"] in ("host sampler", "in-build trace")
    assert build.report["images"]["kind"] == "local-engine"


def test_on_the_local_engine_both_sources_report_and_agree(engine: Engine, bundle: Path, tmp_path: Path) -> None:
    """The sampler polls, so it may miss a peak between two polls but never sees more than the kernel counted: every
    crate's polled peak is at most its traced one (plus ru_maxrss's KiB), and never more rustc at once."""
    report_dir = tmp_path / "build"
    argv = ["build", "--ref", STANDIN_RELEASE, "--stage", "final", "--upstream", str(bundle), "--trace"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--report-dir", str(report_dir)]
    code, report = _run(argv, report_dir)
    try:
        assert code == 0, report.get("checks")
        figures = report["figures"]
        assert figures["memory_source"] == "in-build trace"
        assert figures["host_sampler"]["available"] is True
        assert report["sampler"]["peak_rss_bytes"] > 0
        agreement = figures["agreement"]
        assert agreement["crates_compared"] > 0, "both saw the stand-in's crates"
        assert agreement["over"] == {}, agreement
        assert agreement["sampler_max_concurrent_rustc"] <= agreement["trace_max_concurrent_rustc"]
        assert agreement["agree"] is True
    finally:
        present = [tag for tag in _images_of(report) if docker.image.exists(tag)]
        if present:
            docker.image.remove(present, force=True)


def test_export_oci_checks_the_images_from_their_tarballs_and_runs_nothing(
    exporting_test_engine: SecondTestEngine, bundle: Path, tmp_path: Path
) -> None:
    """A builder that can export (the docker driver on containerd's image store, as a BuildKit without an engine
    does): the images land in the report directory only, and are read there, never run."""
    report_dir = tmp_path / "build"
    argv = ["build", "--ref", STANDIN_RELEASE, "--stage", "final", "--upstream", str(bundle)]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--report-dir", str(report_dir)]
    argv += ["--builder", exporting_test_engine.name, "--export", "oci"]
    code, report = _run(argv, report_dir)
    checks = {check["name"]: check for check in report["checks"]}
    assert {name for name, check in checks.items() if not check["ok"]} == set(), checks
    assert code == 0
    assert report["images"]["kind"] == "export"
    archives = [Path(path) for path in report["images"]["archives"]]
    assert archives == [report_dir / "builder-image.oci.tar", report_dir / "final" / "final-image.oci.tar"]
    assert all(archive.stat().st_size > 0 for archive in archives)
    assert report["binaries"] == ["mas-cli"]
    assert checks["final binary"]["ok"], "the final image's binary is the builder's, read from both tarballs"
    assert report["final"]["entrypoint"] == ["/usr/local/bin/mas-cli"] and report["final"]["user"] == "65532"
    for name in ("version", "final version"):
        assert checks[name]["skipped"] and "never run" in checks[name]["detail"]
    for name in ("marker", "final marker"):
        assert report["build_args"]["VERGEN_GIT_DESCRIBE"] in checks[name]["detail"]
    assert report["version_output"] is None and report["build_info"] is None, "what only a run would tell"
    images = _images_of(report)
    assert not any(client.image.exists(tag) for tag in images for client in (exporting_test_engine.client, docker))
    assert _left_caches(exporting_test_engine.name, _namespaces(report)) == []
