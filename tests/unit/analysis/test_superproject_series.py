"""verify, compat, refresh and bump on a series in a superproject: the Dockerfile patch checked and fitted as one
patch is, the user's other patch checked on the commit's own files, and every result naming its patch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from harness.cli.main import main
from harness.patch.patchfile import Patch
from harness.resources import patches_dir
from tests.support import git
from tests.support.superproject import PATCH, SUBMODULE, assert_git_state_unchanged, git_state, use_series

PATCHES = str(Path(PATCH).parent)
DOCKERFILE_PATCH, IGNORE_PATCH = f"{PATCHES}/dockerfile.patch", f"{PATCHES}/dockerignore.patch"
SERIES_FILES = (DOCKERFILE_PATCH, IGNORE_PATCH)
V1_18_PATCH = patches_dir() / "patch-dockerfile-v1.18.patch"

# The user's own second patch: its hunk's context is the end of upstream's .dockerignore, the same from v1.17.0
# to v1.19.0, so it applies at both.
IGNORE_AT_THE_END = b"""Description: keep the local build scripts out of the build context
---
--- a/.dockerignore
+++ b/.dockerignore
@@ -17,3 +17,4 @@
 Dockerfile
 .dockerignore
 docker-bake.hcl
+build.sh
"""
# Its context is two lines v1.18 pulled apart (`node_modules` went in between): it applies at v1.17.0 only.
IGNORE_IN_THE_MIDDLE = b"""--- a/.dockerignore
+++ b/.dockerignore
@@ -8,3 +8,3 @@
 crates/*/node_modules
-frontend/node_modules
+frontend/node_modules/
 frontend/dist
"""


def _series(at_v1_17: Path, tmp_path: Path, main_patch: Patch, ignore: bytes) -> Path:
    """A copy of the superproject at v1.17.0 with the series: the Dockerfile patch, then the .dockerignore one."""
    root = tmp_path / "chat"
    shutil.copytree(at_v1_17, root, symlinks=True)
    use_series(root, {"dockerfile.patch": main_patch.data, "dockerignore.patch": ignore})
    return root


@pytest.fixture
def series(at_v1_17: Path, tmp_path: Path, main_patch: Patch) -> Path:
    return _series(at_v1_17, tmp_path, main_patch, IGNORE_AT_THE_END)


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int) -> dict[str, Any]:
    assert main([*argv, "--json"]) == code
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def _states(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(entry["patch"], entry["state"]) for entry in document["patches"]]


def test_verify_checks_every_patch_of_the_series_on_the_recorded_commit(
    series: Path, shared_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "verify.xml"
    argv = ["verify", "--superproject", str(series), "--cache-dir", str(shared_cache), "--junit", str(junit)]
    document = _json(capsys, argv, 0)
    assert _states(document) == [(DOCKERFILE_PATCH, "applies"), (IGNORE_PATCH, "applies")]
    assert document["refs"][0]["patch"] == DOCKERFILE_PATCH, "the static checks and pins are the Dockerfile patch's"
    names = {case.get("name") for case in ElementTree.parse(junit).getroot().iter("testcase")}
    assert {
        "dockerfile.patch (1 of 2)",
        "dockerignore.patch (2 of 2)",
        "dockerignore.patch (2 of 2) .dockerignore #1",
    } <= names


def test_a_patch_of_the_series_that_does_not_fit_fails_verify_by_its_name_and_hunk(
    at_v1_17: Path, tmp_path: Path, main_patch: Patch, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _series(at_v1_17, tmp_path, main_patch, IGNORE_AT_THE_END.replace(b" docker-bake.hcl\n", b" bake.hcl\n"))
    document = _json(capsys, ["verify", "--superproject", str(root), "--cache-dir", str(shared_cache)], 1)
    assert _states(document) == [(DOCKERFILE_PATCH, "applies"), (IGNORE_PATCH, "conflict")]
    failed = [r for r in document["results"] if r["status"] == "failed"]
    assert [r["name"] for r in failed] == [
        "dockerignore.patch (2 of 2)",
        "dockerignore.patch (2 of 2) .dockerignore #1",
    ]
    assert failed[1]["location"]["path"] == IGNORE_PATCH


def test_compat_bump_to_names_each_patch_at_the_ref(
    at_v1_17: Path, tmp_path: Path, main_patch: Patch, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _series(at_v1_17, tmp_path, main_patch, IGNORE_IN_THE_MIDDLE)
    argv = ["compat", "--superproject", str(root), "--cache-dir", str(shared_cache), "--bump-to", "v1.19.0"]
    document = _json(capsys, argv, 1)
    # The Dockerfile patch does not apply at v1.19.0, so the tree the second one would apply to is unknown.
    assert _states(document) == [(DOCKERFILE_PATCH, "conflict"), (IGNORE_PATCH, "not-checked")]
    assert document["suggestion"]["variant"] == "v1.18+", "a variant is offered for the Dockerfile patch"


def test_two_patches_of_a_series_changing_the_dockerfile_is_one_line_and_exit_2(
    at_v1_17: Path, tmp_path: Path, main_patch: Patch, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _series(at_v1_17, tmp_path, main_patch, main_patch.data)
    assert main(["verify", "--superproject", str(root), "--cache-dir", str(shared_cache)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert "2 patches of the series change upstream's Dockerfile (dockerfile.patch, dockerignore.patch)" in error


def test_bump_latest_fits_the_dockerfile_patch_and_stages_the_whole_series(
    series: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ignore = (series / IGNORE_PATCH).read_bytes()
    assert main(["bump", "latest", "--superproject", str(series), "--cache-dir", str(shared_cache)]) == 0
    out = capsys.readouterr().out
    assert f"Bump {SUBMODULE} from v1.17.0 to v1.19.0\n" in out
    assert f"{IGNORE_PATCH}: applies as it is" in out
    assert (series / DOCKERFILE_PATCH).read_bytes() == V1_18_PATCH.read_bytes()
    assert (series / IGNORE_PATCH).read_bytes() == ignore, "the user's other patch is never replaced"
    assert git(series, "status", "--porcelain") == f"M  {DOCKERFILE_PATCH}\nM  {SUBMODULE}"
    document = _json(capsys, ["verify", "--superproject", str(series), "--cache-dir", str(shared_cache)], 0)
    assert _states(document) == [(DOCKERFILE_PATCH, "applies"), (IGNORE_PATCH, "applies")]


def test_bump_is_not_made_when_another_patch_does_not_fit_and_says_which(
    at_v1_17: Path, tmp_path: Path, main_patch: Patch, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _series(at_v1_17, tmp_path, main_patch, IGNORE_IN_THE_MIDDLE)
    before = git_state(root, SERIES_FILES)
    assert main(["bump", "v1.19.0", "--superproject", str(root), "--cache-dir", str(shared_cache)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "nothing fits v1.19.0, so nothing was changed" in out
    assert "dockerignore.patch (2 of 2) conflict at v1.19.0: .dockerignore hunk #1" in out
    assert "rebase it by hand" in out
    assert_git_state_unchanged(root, before, SERIES_FILES)


def test_refresh_in_a_series_rebases_its_dockerfile_patch_and_says_how_the_others_fare(
    at_v1_17: Path, tmp_path: Path, main_patch: Patch, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _series(at_v1_17, tmp_path, main_patch, IGNORE_IN_THE_MIDDLE)
    output = tmp_path / "refreshed.patch"
    argv = ["refresh", "--superproject", str(root), "--cache-dir", str(shared_cache), "--output", str(output)]
    document = _json(capsys, [*argv, "--ref", "v1.17.0"], 0)
    assert document["patch"] == DOCKERFILE_PATCH
    assert document["other_patches"] == {"fit": [f"{IGNORE_PATCH}: applies as it is"], "blocked": []}
    document = _json(capsys, [*argv, "--ref", "v1.19.0", "--force"], 1)
    [blocked] = document["other_patches"]["blocked"]
    assert blocked.startswith("dockerignore.patch (2 of 2) conflict at v1.19.0: .dockerignore hunk #1")
    assert (root / IGNORE_PATCH).read_bytes() == IGNORE_IN_THE_MIDDLE, "reported, never replaced"
