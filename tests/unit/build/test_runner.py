"""Checks made of what a build did and what its images hold (`judge`, `judge_final`), and how a build's checks are
reported: no Docker, the facts are records.

The plans are real (the bundled upstream Dockerfiles, patched); what a build and its images would have told
is written down as BuildOutcome, ImageFacts and FinalFacts records.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.analysis.patched import PatchedDockerfile
from harness.build.images import FinalFacts, ImageFacts
from harness.build.plan import BuildPlan, PlanSource, plan_build, plan_final
from harness.build.runner import BuildOutcome, BuildReport, Check, judge, judge_final
from harness.build.sampler import SamplerReport
from harness.knobs import CI_BUILD_ARGS
from harness.report.builds import build_outcome
from harness.results import exit_code
from tests.support import DockerfileTexts

X86 = "x86_64-unknown-linux-gnu"
ARM = "aarch64-unknown-linux-gnu"
SHA = "ab" * 32
INFO: dict[str, object] = {
    "target": X86,
    "profile": "release",
    "num_jobs": 1,
    "env": {"CARGO_PROFILE_RELEASE_LTO": "false", "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16"},
}


def _sampler(max_rustc: int = 1) -> SamplerReport:
    return SamplerReport(
        peak_rss_bytes=1,
        max_concurrent_rustc=max_rustc,
        rustc_flags={},
        peak_rustc_crate=None,
        peak_rustc_crate_rss_bytes=0,
        wall_seconds=1.0,
        interval_seconds=0.25,
    )


def _outcome(*, ok: bool = True, error: str | None = None, max_rustc: int = 1) -> BuildOutcome:
    return BuildOutcome(succeeded=ok, log_path=Path("build.log"), sampler=_sampler(max_rustc), error=error)


def _plan(dockerfile_texts: DockerfileTexts, tag: str, **build_args: str) -> BuildPlan:
    return plan_build(
        PlanSource(
            ref=tag,
            patched=PatchedDockerfile.read(dockerfile_texts(tag)[1].encode()),
            context=Path("/nonexistent"),
            source="standin",
            base_image=None,
        ),
        {**CI_BUILD_ARGS, **build_args},
        run_id="test",
    )


def _facts(binaries: tuple[str, ...], *, ran: bool = True, info: dict[str, object] | None = None) -> ImageFacts:
    return ImageFacts(
        binaries=binaries,
        version_output="mas-cli mas-harness-test (stand-in)" if ran else None,
        version_exit=0 if ran else None,
        build_info=(info or INFO) if ran else None,
        shipped_sha256=SHA,
    )


def _by_name(checks: tuple[Check, ...]) -> dict[str, Check]:
    return {check.name: check for check in checks}


@pytest.mark.parametrize(("tag", "binary"), [("v1.17.0", "mas-cli-amd64"), ("v1.19.0", "mas-cli")])
def test_a_good_builder_image_passes_every_check(dockerfile_texts: DockerfileTexts, tag: str, binary: str) -> None:
    checks = _by_name(judge(_plan(dockerfile_texts, tag), _outcome(), _facts((binary,)), standin=True))
    assert all(check.ok and not check.skipped for check in checks.values()), checks
    assert set(checks) == {
        "build",
        "binaries",
        "one-rustc-at-a-time",
        "version",
        "build-info target",
        "build-info profile",
        "build-info num_jobs",
        "build-info CARGO_PROFILE_RELEASE_LTO",
    }


def test_each_builder_check_fails_on_its_own(dockerfile_texts: DockerfileTexts) -> None:
    plan = _plan(dockerfile_texts, "v1.17.0")
    extra = _by_name(judge(plan, _outcome(), _facts(("mas-cli-amd64", "mas-cli-arm64")), standin=True))
    assert not extra["binaries"].ok, "one target asked, two moved"
    parallel = _by_name(judge(plan, _outcome(max_rustc=2), _facts(("mas-cli-amd64",)), standin=True))
    assert not parallel["one-rustc-at-a-time"].ok
    wrong_lto = {**INFO, "env": {"CARGO_PROFILE_RELEASE_LTO": "fat"}}
    lto = _by_name(judge(plan, _outcome(), _facts(("mas-cli-amd64",), info=wrong_lto), standin=True))
    assert not lto["build-info CARGO_PROFILE_RELEASE_LTO"].ok
    assert lto["build-info CARGO_PROFILE_RELEASE_LTO"].detail == "'fat', asked 'false'"


def test_an_earlier_builds_binary_fails_the_version_check(dockerfile_texts: DockerfileTexts) -> None:
    """MAS's --version is the VERGEN_GIT_DESCRIBE it was built with: another run's means cargo compiled nothing."""
    plan = _plan(dockerfile_texts, "v1.19.0")
    assert plan.build_args["VERGEN_GIT_DESCRIBE"] == "mas-harness-test"
    stale = dataclasses.replace(_facts(("mas-cli",)), version_output="mas-cli mas-harness-a9dc50d3712e")
    version = _by_name(judge(plan, _outcome(), stale, standin=False))["version"]
    assert not version.ok
    assert version.detail == (
        "--version exit 0: 'mas-cli mas-harness-a9dc50d3712e', not this build's mas-harness-test: the binary is an "
        "earlier build's (cargo found it fresh in a reused /app/target), so it shows nothing of this build's knobs"
    )
    own = dataclasses.replace(stale, version_output="mas-cli mas-harness-test")
    assert _by_name(judge(plan, _outcome(), own, standin=False))["version"].ok


def test_a_failed_build_is_one_failed_check(dockerfile_texts: DockerfileTexts) -> None:
    checks = judge(_plan(dockerfile_texts, "v1.19.0"), _outcome(ok=False, error="exit 1"), None, standin=True)
    assert checks == (Check(name="build", ok=False, detail="exit 1"),)


def test_the_other_architectures_binary_is_not_run_here(dockerfile_texts: DockerfileTexts) -> None:
    plan = _plan(dockerfile_texts, "v1.17.0", MAS_BUILD_TARGETS=ARM)
    checks = _by_name(judge(plan, _outcome(), _facts(("mas-cli-arm64",), ran=False), standin=True))
    assert checks["binaries"].ok
    assert checks["version"].skipped and checks["version"].ok
    assert "mas-cli-amd64" in checks["version"].detail
    assert not any(name.startswith("build-info") for name in checks), "nothing ran, nothing to compare"


def _final_facts(**changes: object) -> FinalFacts:
    fields: dict[str, object] = {
        "image": "mas-harness/mas:v1.19.0-x",
        "user": "65532",
        "entrypoint": ("/usr/local/bin/mas-cli",),
        "binary_sha256": SHA,
        "version_output": "mas-cli mas-harness-test (stand-in)",
        "version_exit": 0,
        "build_info": INFO,
    }
    return FinalFacts(**{**fields, **changes})  # type: ignore[arg-type]


def _final_plan(dockerfile_texts: DockerfileTexts, tag: str, **build_args: str) -> BuildPlan:
    return plan_final(_plan(dockerfile_texts, tag, **build_args), runtime_image=None, stage_stand_ins=None)


@pytest.mark.parametrize("tag", ["v0.14.0", "v1.17.0", "v1.19.0"])
def test_a_final_image_shipping_the_builders_binary_passes(dockerfile_texts: DockerfileTexts, tag: str) -> None:
    builder = _facts(("mas-cli",) if tag == "v1.19.0" else ("mas-cli-amd64",))
    checks = judge_final(_final_plan(dockerfile_texts, tag), _outcome(), _final_facts(), builder=builder, standin=True)
    assert [c.name for c in checks] == [
        "final build",
        "final binary",
        "final entrypoint and user",
        "final version",
        "final build-info",
    ]
    assert all(check.ok for check in checks), checks


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"binary_sha256": "cd" * 32}, "final binary"),
        ({"binary_sha256": None}, "final binary"),
        ({"user": "0"}, "final entrypoint and user"),
        ({"entrypoint": ("/bin/sh", "-c")}, "final entrypoint and user"),
        ({"version_exit": 126}, "final version"),
        ({"build_info": {**INFO, "num_jobs": 2}}, "final build-info"),
    ],
)
def test_each_final_check_fails_on_its_own(
    dockerfile_texts: DockerfileTexts, change: dict[str, object], failing: str
) -> None:
    plan = _final_plan(dockerfile_texts, "v1.19.0")
    facts = _final_facts(**change)
    checks = judge_final(plan, _outcome(), facts, builder=_facts(("mas-cli",)), standin=True)
    assert [c.name for c in checks if not c.ok] == [failing]


def test_a_final_stage_missing_the_targetarch_binary_says_which_and_why(dockerfile_texts: DockerfileTexts) -> None:
    plan = _final_plan(dockerfile_texts, "v1.17.0", MAS_BUILD_TARGETS=ARM)
    failed = _outcome(ok=False, error="docker buildx build failed (exit 1): /usr/local/bin/mas-cli-amd64 not found")
    (check,) = judge_final(plan, failed, None, builder=_facts(("mas-cli-arm64",), ran=False), standin=True)
    assert not check.ok
    assert check.detail.startswith("the final stage copies /usr/local/bin/mas-cli-amd64 from the builder stage")
    assert "['mas-cli-arm64']" in check.detail
    assert f"MAS_BUILD_TARGETS='{ARM}'" in check.detail


def test_a_skipped_check_is_reported_skipped_and_fails_nothing(tmp_path: Path) -> None:
    checks = (
        Check(name="build", ok=True, detail="docker buildx build succeeded"),
        Check(name="version", ok=True, skipped=True, detail="not run: no mas-cli-amd64"),
    )
    report = BuildReport(
        ref="v1.17.0",
        source="standin",
        image="mas-harness/builder:v1.17.0-x",
        build_args={},
        air_gapped=True,
        deviations=(),
        binaries=("mas-cli-arm64",),
        version_output=None,
        build_info=None,
        sampler=_sampler(),
        log="build.log",
        checks=checks,
    )
    outcome = build_outcome(report, report_file=tmp_path / "report.json")
    assert [str(result.status) for result in outcome.results] == ["ok", "skipped"]
    assert exit_code(outcome.results) == 0
    data = json.loads(json.dumps(report.as_json()))
    assert data["checks"][1] == {
        "name": "version",
        "ok": True,
        "detail": "not run: no mas-cli-amd64",
        "skipped": True,
    }
    assert data["final"] is None and data["stage"] == "builder"
