"""The integration tier needs a real Docker engine with BuildKit, and Docker Compose v2 for the compose tests.

Builds of the final stage are made once per session and shared by the tests that need them
(`harness_build`); the compose tests run the images through pytest-docker's `docker_services`,
whose fixtures are set here: the compose tool, the compose files, and the env file that names
the images (nothing in the compose files is pulled).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from python_on_whales import docker

from harness.analysis import dockerfile as dfm
from harness.build.baseimage import ensure_rust_base_image
from harness.build.docker_engine import Engine, check_engine
from harness.build.plan import base_image_need, runtime_suite
from harness.build.runtimeimage import ensure_runtime_image
from harness.cli.main import main
from harness.errors import EnvironmentProblem
from harness.resources import standin_stages
from tests.support import STANDIN_RELEASE, Build, DockerfileTexts, HarnessBuild, unavailable
from tests.support.second_engine import (
    SecondEngineUnavailable,
    SecondTestEngine,
    start_second_engine,
    stop_second_engine,
)

HERE = Path(__file__).parent
COMPOSE = HERE / "compose.yaml"
COMPOSE_FULL = HERE / "compose.full.yaml"


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The integration tier needs a real Docker engine with BuildKit: under CI a missing one fails the run."""
    try:
        return check_engine()
    except EnvironmentProblem as exc:
        unavailable(f"no usable Docker engine: {exc}")


def standin_base_images(dockerfile_texts: DockerfileTexts, work_dir: Path) -> list[str]:
    """The local base images an air-gapped build of the stand-in's final stage of STANDIN_RELEASE starts from, made
    on the first engine as the harness makes them (reused when they are there already)."""
    patched = dfm.parse(dockerfile_texts(STANDIN_RELEASE)[1])
    images = [ensure_rust_base_image(base_image_need(patched, {}).suite, work_dir=work_dir).tag]
    suite = runtime_suite(patched, {})
    if suite:
        images.append(ensure_runtime_image(suite, work_dir=work_dir).tag)
    return images


@pytest.fixture(scope="session")
def second_test_engine(
    engine: Engine, dockerfile_texts: DockerfileTexts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecondTestEngine]:
    """A second engine (its own dockerd, data root and socket, in a network namespace of its own), registered as a
    docker context and buildx builder and loaded with the stand-in's base images; removed at the end."""
    images = standin_base_images(dockerfile_texts, tmp_path_factory.mktemp("second-engine-images"))
    try:
        started = start_second_engine(images=images)
    except SecondEngineUnavailable as exc:
        unavailable(f"no second test engine: {exc}")
    yield started
    stop_second_engine(started)


@pytest.fixture(scope="session")
def exporting_test_engine(
    engine: Engine, dockerfile_texts: DockerfileTexts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecondTestEngine]:
    """A second engine as `second_test_engine`, with containerd's image store: its docker-driver builder can export
    images (`--export oci`), as a BuildKit without an engine would have to."""
    images = standin_base_images(dockerfile_texts, tmp_path_factory.mktemp("exporting-engine-images"))
    try:
        started = start_second_engine(images=images, config={"features": {"containerd-snapshotter": True}})
    except SecondEngineUnavailable as exc:
        unavailable(f"no second test engine: {exc}")
    yield started
    stop_second_engine(started)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("full_source") and not os.environ.get("MAS_SOURCE"):
        pytest.skip("needs a full MAS source: set MAS_SOURCE=/path/to/a/mas/checkout")


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


# -- pytest-docker ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_compose_command(engine: Engine) -> str:
    """Compose v2, as the plugin (`docker compose`) or the standalone binary; install-engine installs it."""
    for command in ("docker compose", "docker-compose"):
        try:
            argv = [*shlex.split(command), "version", "--short"]
            found = subprocess.run(argv, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            continue
        if found.returncode == 0 and found.stdout.strip().lstrip("v").startswith("2."):
            return command
    unavailable("no Docker Compose v2 (`docker compose` or `docker-compose`): `mas-harness install-engine` installs it")


@dataclass(frozen=True)
class FullSource:
    """A full MAS checkout given by MAS_SOURCE, the release it is, and the real policy `server` needs."""

    path: Path
    ref: str
    policy: Path


def full_source() -> FullSource | None:
    source = os.environ.get("MAS_SOURCE")
    if not source:
        return None
    path = Path(source)
    ref = (
        os.environ.get("MAS_SOURCE_REF")
        or subprocess.run(
            ["git", "-C", str(path), "describe", "--tags", "--abbrev=0"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    # `server` loads and compiles the OPA policy at startup: MAS's own when the checkout has it compiled
    # (`make -C policies`, which needs opa), else the stand-in that answers OPA's ABI (a test double).
    built = path / "policies" / "policy.wasm"
    default = built if built.is_file() else standin_stages() / "policy" / "app" / "policies" / "policy.wasm"
    policy = Path(os.environ.get("MAS_POLICY_WASM") or default)
    if not policy.is_file():
        pytest.fail(f"MAS_POLICY_WASM names {policy}, which is not a file")
    return FullSource(path=path, ref=ref, policy=policy.resolve())


@pytest.fixture(scope="session")
def compose_env(harness_build: HarnessBuild, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The env file compose reads the images from: the stand-in's final image, and with MAS_SOURCE the real one's,
    PostgreSQL's base (the local Debian image) and the real policy."""
    standin = harness_build(STANDIN_RELEASE)
    if not standin.final.get("image"):
        pytest.fail(f"the stand-in's final image of {STANDIN_RELEASE} was not built: {standin.report.get('checks')}")
    values = {"MAS_HARNESS_STANDIN_IMAGE": standin.final["image"]}
    full = full_source()
    if full is not None:
        built = harness_build(full.ref, source=str(full.path))
        if not built.final.get("image"):
            pytest.fail(f"the final image of {full.path} ({full.ref}) was not built: {built.report.get('checks')}")
        # PostgreSQL runs on any Debian: the suite of the newest releases' runtime, likely made by the build already.
        debian = ensure_runtime_image("trixie", work_dir=tmp_path_factory.mktemp("runtime-base"))
        values |= {
            "MAS_HARNESS_FULL_IMAGE": built.final["image"],
            "MAS_HARNESS_DEBIAN_IMAGE": debian.debian_tag,
            "MAS_POLICY_WASM": str(full.policy),
        }
    env_file = tmp_path_factory.mktemp("compose") / "images.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return env_file


@pytest.fixture(scope="session")
def docker_compose_file() -> list[str]:
    return [str(COMPOSE), str(COMPOSE_FULL)] if os.environ.get("MAS_SOURCE") else [str(COMPOSE)]


@pytest.fixture(scope="session")
def docker_setup(compose_env: Path) -> list[str]:
    # No `--wait`: the stand-in's services answer and exit, which `--wait` takes for a failure; the tests wait
    # on what each service says instead.
    return [f"--env-file {shlex.quote(str(compose_env))} up --detach"]


@pytest.fixture(scope="session")
def docker_cleanup(compose_env: Path) -> list[str]:
    return [f"--env-file {shlex.quote(str(compose_env))} down --volumes"]
