"""The integration tier needs a real Docker engine with BuildKit.

Builds of the final stage are made once per session and shared by the tests that need them
(`harness_build`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import docker
from tests.support import Build, HarnessBuild, unavailable

from harness.build.engine import Engine, check_engine
from harness.cli.main import main
from harness.errors import EnvironmentProblem


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The integration tier needs a real Docker engine with BuildKit: under CI a missing one fails the run."""
    try:
        return check_engine()
    except EnvironmentProblem as exc:
        unavailable(f"no usable Docker engine: {exc}")


@pytest.fixture(scope="session")
def harness_build(engine: Engine, bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HarnessBuild]:
    """`mas-harness build --ref REF --stage STAGE --source SOURCE --build-arg ...`, run once per session for each
    distinct set of arguments; the images those runs made are removed at the end."""
    cache = tmp_path_factory.mktemp("build-cache")
    made: dict[tuple[str, ...], Build] = {}

    def build(ref: str, *build_args: str, stage: str = "final", source: str = "standin") -> Build:
        key = (ref, stage, source, *build_args)
        if key not in made:
            report_dir = tmp_path_factory.mktemp(f"build-{ref}-{stage}")
            argv = ["build", "--ref", ref, "--stage", stage, "--source", source, "--upstream", str(bundle)]
            argv += ["--cache-dir", str(cache), "--report-dir", str(report_dir)]
            for arg in build_args:
                argv += ["--build-arg", arg]
            code = main(argv)
            report_file = report_dir / "report.json"
            report = json.loads(report_file.read_text()) if report_file.exists() else {}
            made[key] = Build(code=code, report=report, report_dir=report_dir)
        return made[key]

    yield build
    images = {tag for b in made.values() for tag in (b.report.get("image"), b.final.get("image")) if tag}
    present = [tag for tag in images if docker.image.exists(tag)]
    if present:
        docker.image.remove(present, force=True)
