"""The local stand-ins for the final stage's distroless base: names, what they serve, how they are made. No docker."""

from __future__ import annotations

import pytest

from harness.build import runtimeimage
from harness.build.runtimeimage import LocalRuntimeImage, debian_tag, runtime_tag


def test_names_follow_the_debian_release() -> None:
    assert runtime_tag("bookworm") == "mas-harness/distroless-cc:debian12"
    assert runtime_tag("trixie") == "mas-harness/distroless-cc:debian13"
    assert debian_tag("trixie") == "mas-harness/debian:trixie"


@pytest.mark.parametrize(
    ("image", "served"),
    [
        ("gcr.io/distroless/cc-debian13:nonroot", True),
        ("gcr.io/distroless/cc-debian13:debug-nonroot", True),
        ("gcr.io/distroless/cc-debian12:nonroot", False),
        ("docker.io/library/debian:13", False),
    ],
)
def test_a_runtime_image_serves_distroless_of_its_release_only(image: str, served: bool) -> None:
    trixie = LocalRuntimeImage(tag=runtime_tag("trixie"), debian_tag=debian_tag("trixie"), suite="trixie", reused=True)
    assert trixie.serves(image) is served


def test_the_runtime_image_runs_as_distroless_nonroot() -> None:
    changes = runtimeimage.runtime_changes({"a": "b"})
    assert "USER 65532" in changes
    assert "WORKDIR /home/nonroot" in changes
    assert 'LABEL a="b"' in changes
    assert not any(change.startswith(("CMD", "ENTRYPOINT")) for change in changes), "distroless sets neither"
    assert runtimeimage.PASSWD_LINE == "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
    assert 'CMD ["bash"]' in runtimeimage.debian_changes({}), "the plain Debian image keeps its shell"


def test_every_shell_spelling_is_left_out_of_the_runtime_image() -> None:
    for shell in ("sh", "bash", "dash"):
        assert f"./bin/{shell}" in runtimeimage.SHELLS
        assert f"./usr/bin/{shell}" in runtimeimage.SHELLS


def test_inputs_decide_reuse() -> None:
    assert runtimeimage.inputs_digest("trixie") == runtimeimage.inputs_digest("trixie")
    assert runtimeimage.inputs_digest("trixie") != runtimeimage.inputs_digest("bookworm")
    assert runtimeimage.labels("trixie")[runtimeimage.LABEL_INPUTS] == runtimeimage.inputs_digest("trixie")
