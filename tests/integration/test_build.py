"""Build the patched upstream Dockerfile for real: one target, CARGO_BUILD_JOBS=1, LTO off; check the image.

The build context is the stand-in source tree (harness/resources/standin, a test
double shaped like MAS); the Dockerfile is upstream's, from the pinned checkout,
with the patch applied by harness.patch.apply. Air-gapped mode is detected as users get it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import docker

from harness.build.docker_engine import Engine, cache_records
from harness.cli.main import main

# One pin per patch variant and base: v0.14.0 (the v0.14 variant, bookworm), v1.7.0 (bookworm, Rust 1.89
# upstream) and v1.17.0 (trixie, Rust 1.93) for the v0.15 - v1.17 variant, v1.19.0 for the v1.18+ variant.
PINS = ("v0.14.0", "v1.7.0", "v1.17.0", "v1.19.0")
# The v1.18+ shape builds the TARGETARCH target only, moved to /usr/local/bin/mas-cli.
BINARY = {"v1.19.0": "mas-cli"}
REFUSAL = {
    "v1.19.0": "MAS_BUILD_TARGETS: 'x86_64-unknown-linux-gnu;id' is not x86_64-unknown-linux-gnu",
}
REQUIRED_KEYS = {
    "ref",
    "image",
    "binaries",
    "version_output",
    "build_info",
    "build_args",
    "air_gapped",
    "deviations",
    "sampler",
}


@pytest.fixture(scope="module", autouse=True)
def _remove_built_images(engine: Engine) -> Iterator[None]:
    """Each build leaves a uniquely tagged builder image; what this module made, it removes."""
    before = {image.id for image in docker.image.list("mas-harness/builder")}
    yield
    made = [image.id for image in docker.image.list("mas-harness/builder") if image.id not in before]
    if made:
        docker.image.remove(made, force=True)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _build(
    bundle: Path, cache_dir: Path, report_dir: Path, ref: str, *build_args: str
) -> tuple[int, dict[str, object]]:
    argv = [
        "build",
        "--ref",
        ref,
        "--upstream",
        str(bundle),
        "--cache-dir",
        str(cache_dir),
        "--report-dir",
        str(report_dir),
    ]
    for arg in build_args:
        argv += ["--build-arg", arg]
    code = main(argv)
    report = json.loads((report_dir / "report.json").read_text()) if (report_dir / "report.json").exists() else {}
    return code, report


@pytest.mark.integration
@pytest.mark.parametrize("ref", PINS)
def test_one_target_one_job_lto_off(engine: Engine, bundle: Path, cache_dir: Path, tmp_path: Path, ref: str) -> None:
    code, report = _build(bundle, cache_dir, tmp_path, ref)
    assert report.keys() >= REQUIRED_KEYS
    assert report["binaries"] == [BINARY.get(ref, "mas-cli-amd64")], "exactly the one binary asked for, no arm64"
    build_args = report["build_args"]
    assert isinstance(build_args, dict)
    assert report["version_output"] == f"mas-cli {build_args['VERGEN_GIT_DESCRIBE']} (stand-in)", "this build's"
    info = report["build_info"]
    assert isinstance(info, dict)
    assert info["num_jobs"] == 1
    assert info["target"] == "x86_64-unknown-linux-gnu"
    assert info["profile"] == "release"
    assert info["env"]["CARGO_PROFILE_RELEASE_LTO"] == "false"
    assert info["env"]["CARGO_PROFILE_RELEASE_CODEGEN_UNITS"] == "16", "the patch default reaches cargo"
    sampler = report["sampler"]
    assert isinstance(sampler, dict)
    assert 1 <= sampler["max_concurrent_rustc"] <= 1, "CARGO_BUILD_JOBS=1: one rustc of the source tree at a time"
    assert sampler["peak_rss_bytes"] > 0
    assert sampler["rustc_flags"]["codegen-units"] == ["16"]
    assert sampler["wall_seconds"] > 0
    assert (tmp_path / "sampler.json").is_file()
    assert (tmp_path / "build.log").stat().st_size > 0
    deviations = report["deviations"]
    assert isinstance(deviations, list)
    if report["air_gapped"]:
        assert any("# syntax" in d for d in deviations)
    assert code == 0


@pytest.mark.integration
@pytest.mark.parametrize("ref", PINS)
def test_empty_targets_build_the_targetarch_one(
    engine: Engine, bundle: Path, cache_dir: Path, tmp_path: Path, ref: str
) -> None:
    code, report = _build(
        bundle, cache_dir, tmp_path, ref, "MAS_BUILD_TARGETS=", "CARGO_PROFILE_RELEASE_CODEGEN_UNITS=4"
    )
    assert report["binaries"] == [BINARY.get(ref, "mas-cli-amd64")]
    info = report["build_info"]
    assert isinstance(info, dict)
    assert info["target"] == "x86_64-unknown-linux-gnu"
    assert info["env"]["CARGO_PROFILE_RELEASE_CODEGEN_UNITS"] == "4"
    assert code == 0


@pytest.mark.integration
@pytest.mark.parametrize("ref", PINS)
def test_invalid_target_fails_the_build_with_the_patch_message(
    engine: Engine, bundle: Path, cache_dir: Path, tmp_path: Path, ref: str
) -> None:
    code, report = _build(bundle, cache_dir, tmp_path, ref, "MAS_BUILD_TARGETS=x86_64-unknown-linux-gnu;id")
    assert code == 1
    assert report["image"] is None
    log = (tmp_path / "build.log").read_text()
    assert REFUSAL.get(ref, "MAS_BUILD_TARGETS: unsupported target 'x86_64-unknown-linux-gnu;id'") in log
    assert "Compiling mas-cli" not in log, "refused before cargo ran"


@pytest.mark.integration
def test_each_build_compiles_in_a_target_cache_of_its_own_dropped_after(
    engine: Engine, bundle: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """A rerun must not be handed the last build's binary from upstream's shared /app/target, nor leave GBs behind."""
    reports = []
    for run in ("first", "second"):
        code, report = _build(bundle, cache_dir, tmp_path / run, "v1.19.0")
        assert code == 0, report.get("checks")
        reports.append(report)
    namespaces = []
    for report in reports:
        deviations = report["deviations"]
        assert isinstance(deviations, list)
        [isolated] = [d for d in deviations if "given id mas-harness-build-" in d]
        namespaces.append(isolated.split("given id ")[1].split("/app/target")[0])
    assert namespaces[0] != namespaces[1], "each run its own"
    versions = [report["version_output"] for report in reports]
    assert versions[0] != versions[1], "each binary is its own build's, with its own VERGEN_GIT_DESCRIBE"
    listing = subprocess.run(["docker", "buildx", "du", "--verbose"], capture_output=True, text=True, check=True)
    left = [text for text in cache_records(listing.stdout).values() if any(f"/{ns}/" in text for ns in namespaces)]
    assert left == [], "the run's target cache is dropped once the image is checked"
