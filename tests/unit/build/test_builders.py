"""Which builder a build runs on and where its images are checked (`plan_target`): pure decisions from what buildx and
the builder's engine said, written down as BuilderFacts records. No Docker."""

from __future__ import annotations

import dataclasses

import pytest

from harness.build.builders import LOCAL_ENGINE, PLATFORM, BuilderFacts, ImageHome, plan_target
from harness.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, BadInput, EnvironmentProblem, HarnessError
from harness.knobs import EXPORT_FORMATS

AMD64 = ("linux/amd64", "linux/amd64/v2", "linux/386")
LOCAL = BuilderFacts(
    name="default",
    driver="docker",
    status="running",
    platforms=AMD64,
    endpoint="default",
    on_local_engine=True,
    on_this_machine=True,
)
OTHER_ENGINE = BuilderFacts(
    name="build-host", driver="docker", status="running", platforms=AMD64, endpoint="build-host"
)
REMOTE = BuilderFacts(name="farm", driver="remote", status="running", platforms=AMD64, endpoint="tcp://farm:1234")


def _refusal(facts: BuilderFacts, *, load: bool = False, export: str | None = None) -> HarnessError:
    with pytest.raises(HarnessError) as raised:
        plan_target(facts, named=facts.name, load=load, export=export)  # type: ignore[arg-type]
    message = str(raised.value)
    assert "\n" not in message, "one line"
    return raised.value


def test_the_local_engines_builder_builds_and_checks_in_the_local_engine_where_the_sampler_sees_it() -> None:
    target = plan_target(LOCAL, named=None, load=False, export=None)
    assert target.images == ImageHome(kind="local-engine")
    assert target.context is None
    assert target.processes_visible
    assert not target.load, "the docker driver stores into its engine without --load"
    assert plan_target(LOCAL, named=None, load=True, export=None).images == target.images


def test_the_local_engine_over_a_remote_socket_is_not_sampled() -> None:
    over_ssh = dataclasses.replace(LOCAL, on_this_machine=False)
    assert not plan_target(over_ssh, named=None, load=False, export=None).processes_visible


def test_a_docker_driver_builder_of_another_engine_is_used_through_its_context_and_checked_there() -> None:
    target = plan_target(OTHER_ENGINE, named="build-host", load=False, export=None)
    assert target.context == "build-host", "docker --context build-host buildx build"
    assert target.images == ImageHome(kind="builder-engine", context="build-host")
    assert not target.processes_visible
    assert target.images.runs_binaries
    assert "build-host" in target.images.describe()


def test_load_from_another_engines_builder_copies_the_image_into_the_local_engine() -> None:
    target = plan_target(OTHER_ENGINE, named="build-host", load=True, export=None)
    assert target.images == ImageHome(kind="local-engine", copy_from="build-host")
    assert target.context == "build-host"
    assert not target.load, "buildx --load would load into the builder's own engine; the copy follows the build"


@pytest.mark.parametrize("facts", [LOCAL, OTHER_ENGINE])
def test_the_docker_driver_without_containerds_image_store_cannot_export(facts: BuilderFacts) -> None:
    refusal = _refusal(facts, export="oci")
    assert isinstance(refusal, EnvironmentProblem)
    assert refusal.return_code == EXIT_ENVIRONMENT
    assert "cannot export" in str(refusal)
    assert "drop --export" in str(refusal)


def test_the_docker_driver_with_containerds_image_store_exports() -> None:
    exporting = dataclasses.replace(OTHER_ENGINE, engine_exports=True)
    target = plan_target(exporting, named="build-host", load=False, export="docker")
    assert target.images == ImageHome(kind="export", export_format="docker")
    assert not target.images.runs_binaries


def test_a_buildkit_without_an_engine_needs_load_or_export_and_says_so() -> None:
    refusal = _refusal(REMOTE)
    assert isinstance(refusal, BadInput)
    assert refusal.return_code == EXIT_BAD_INPUT
    assert "--load" in str(refusal)
    assert "--export oci" in str(refusal)


@pytest.mark.parametrize("export", EXPORT_FORMATS)
def test_a_buildkit_without_an_engine_exports_into_the_report_directory_and_is_read_not_run(export: str) -> None:
    target = plan_target(REMOTE, named="farm", load=False, export=export)  # type: ignore[arg-type]
    assert target.images == ImageHome(kind="export", export_format=export)  # type: ignore[arg-type]
    assert target.builder_arg == "farm"
    assert target.context is None
    assert not target.processes_visible
    assert not target.images.runs_binaries
    assert "read, not run" in target.images.describe()


def test_a_buildkit_without_an_engine_loads_into_the_local_engine_with_buildx_load() -> None:
    target = plan_target(REMOTE, named="farm", load=True, export=None)
    assert target.images == ImageHome(kind="local-engine")
    assert target.load
    assert not target.processes_visible, "the build ran on the farm, whatever engine holds the image afterwards"


def test_load_and_export_together_are_a_mistake() -> None:
    assert isinstance(_refusal(REMOTE, load=True, export="oci"), BadInput)


def test_a_builder_that_cannot_build_the_targetarch_platform_is_a_missing_capability() -> None:
    arm_only = dataclasses.replace(REMOTE, platforms=("linux/arm64",))
    refusal = _refusal(arm_only, load=True)
    assert isinstance(refusal, EnvironmentProblem)
    assert PLATFORM in str(refusal)
    assert "linux/arm64" in str(refusal)


@pytest.mark.parametrize("status", ["inactive", "stopped", "error", "unknown"])
def test_a_builder_that_does_not_run_is_a_missing_capability(status: str) -> None:
    refusal = _refusal(dataclasses.replace(OTHER_ENGINE, status=status))
    assert isinstance(refusal, EnvironmentProblem)
    assert f"status {status}" in str(refusal)


def test_a_target_says_in_its_report_where_it_built_and_where_its_images_are() -> None:
    data = plan_target(OTHER_ENGINE, named="build-host", load=False, export=None).as_json()
    assert data == {"name": "build-host", "driver": "docker", "context": "build-host", "processes_visible": False}
    assert LOCAL_ENGINE.images.as_json()["kind"] == "local-engine"
