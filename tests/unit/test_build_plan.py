"""What a build must leave in /usr/local/bin, by builder shape (no Docker: the plan only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support import DockerfileTexts

from harness.build.plan import plan_build, plan_shape
from harness.knobs import expected_binaries

X86 = "x86_64-unknown-linux-gnu"
ARM = "aarch64-unknown-linux-gnu"


def test_expected_binaries_by_shape() -> None:
    assert expected_binaries([X86, ARM], shape="per-arch") == ("mas-cli-amd64", "mas-cli-arm64")
    assert expected_binaries([X86], shape="single") == ("mas-cli",)


@pytest.mark.parametrize(("tag", "shape"), [("v0.14.0", "per-arch"), ("v1.17.0", "per-arch"), ("v1.19.0", "single")])
def test_a_plan_knows_the_shape_it_builds(
    dockerfile_texts: DockerfileTexts, tmp_path: Path, tag: str, shape: str
) -> None:
    plan = plan_build(
        ref=tag,
        patched_dockerfile=dockerfile_texts(tag)[1].encode(),
        context=tmp_path,
        source="standin",
        build_args={"MAS_BUILD_TARGETS": X86},
        run_id="test",
        base_image=None,
    )
    assert plan_shape(plan) == shape
