"""`build --stage final`: the image users ship, built air-gapped as upstream's last stage and checked.

One release of each final-stage shape: v0.14.0 and v1.17.0 copy /usr/local/bin/mas-cli-${TARGETARCH}
(bookworm and trixie bases), v1.19.0 copies /usr/local/bin/mas-cli. The build context is the
stand-in source tree (a test double shaped like MAS); the `frontend` and `policy` stages and the
distroless base are stand-ins too, each named in the report's deviations.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from python_on_whales import docker

from harness.build.docker_engine import Engine
from harness.cli.main import main
from tests.support import HarnessBuild, count_parses

pytestmark = pytest.mark.integration

SHAPES = {"v0.14.0": "mas-cli-amd64", "v1.17.0": "mas-cli-amd64", "v1.19.0": "mas-cli"}
"""Each release and the file of the builder stage its final stage copies for TARGETARCH amd64."""


@pytest.mark.parametrize("ref", SHAPES)
def test_the_final_image_ships_the_builders_binary_as_its_entrypoint(harness_build: HarnessBuild, ref: str) -> None:
    build = harness_build(ref)
    report, final, checks = build.report, build.final, build.checks
    assert report["stage"] == "final"
    assert {name for name, check in checks.items() if not check["ok"]} == set(), checks
    assert {"final build", "final binary", "final entrypoint and user", "final version", "final build-info"} <= set(
        checks
    )
    assert report["binaries"] == [SHAPES[ref]], "the builder moved the TARGETARCH binary only"
    assert final["binary"] == "/usr/local/bin/mas-cli"
    assert final["binary_sha256"] and len(final["binary_sha256"]) == 64
    assert SHAPES[ref] in checks["final binary"]["detail"], "compared with the very file the final stage copies"
    assert final["entrypoint"] == ["/usr/local/bin/mas-cli"]
    assert final["user"] == "65532"
    assert final["version_exit"] == 0
    assert final["version_output"] == report["version_output"]
    assert report["version_output"] == f"mas-cli {report['build_args']['VERGEN_GIT_DESCRIBE']} (stand-in)"
    assert final["build_info"] == report["build_info"]
    assert final["build_info"]["target"] == "x86_64-unknown-linux-gnu"
    assert (build.report_dir / "final" / "build.log").stat().st_size > 0
    if report["air_gapped"]:
        deviations = "\n".join(report["deviations"])
        assert "stage `frontend` not built" in deviations
        assert "stage `policy` not built" in deviations
        assert "stands in for gcr.io/distroless/cc-debian" in deviations
    assert build.code == 0


def test_the_other_architecture_only_fails_naming_the_missing_binary(harness_build: HarnessBuild) -> None:
    """Per-arch release, TARGETARCH amd64, MAS_BUILD_TARGETS aarch64 only: the builder moves mas-cli-arm64, and the
    final stage's COPY of mas-cli-amd64 finds nothing."""
    build = harness_build("v1.17.0", "MAS_BUILD_TARGETS=aarch64-unknown-linux-gnu")
    checks = build.checks
    assert build.code == 1
    assert build.report["binaries"] == ["mas-cli-arm64"]
    assert checks["build"]["ok"], "the builder stage itself builds what it was asked"
    assert checks["version"]["skipped"], "an arm64 binary is not run on this amd64 machine"
    assert not checks["final build"]["ok"]
    assert "/usr/local/bin/mas-cli-amd64" in checks["final build"]["detail"]
    assert "MAS_BUILD_TARGETS" in checks["final build"]["detail"]
    assert build.final.get("image") is None
    assert "mas-cli-amd64" in (build.report_dir / "final" / "build.log").read_text()


def test_one_final_build_parses_its_dockerfile_once(
    engine: Engine, bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = count_parses(monkeypatch)
    argv = ["build", "--ref", "v1.19.0", "--stage", "final", "--source", "standin", "--upstream", str(bundle)]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--report-dir", str(tmp_path / "report")]
    try:
        assert main(argv) == 0
    finally:
        report = json.loads((tmp_path / "report" / "report.json").read_text())
        made = [tag for tag in (report.get("image"), (report.get("final") or {}).get("image")) if tag]
        docker.image.remove([tag for tag in made if docker.image.exists(tag)], force=True)
    assert len(parses) == 1, "the patched Dockerfile, and nothing made of it"
    assert list(parses.values()) == [1]
