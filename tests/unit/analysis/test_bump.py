"""`bump` in a generated superproject: the submodule moved and the patch fitted, staged, all or nothing."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.cli.main import main
from harness.patch.patchfile import Patch
from harness.resources import patches_dir
from tests.support import git
from tests.support.superproject import (
    CONFIG,
    PATCH,
    SUBMODULE,
    assert_git_state_unchanged,
    commit_all,
    git_state,
)

V1_18_PATCH = patches_dir() / "patch-dockerfile-v1.18.patch"


@pytest.fixture
def superproject(at_v1_17: Path, tmp_path: Path) -> Path:
    root = tmp_path / "chat"
    shutil.copytree(at_v1_17, root, symlinks=True)
    return root


def _bump(root: Path, cache: Path, *args: str) -> list[str]:
    return ["bump", "--superproject", str(root), "--cache-dir", str(cache), *args]


def _document(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert (document["schema_version"], document["command"]) == (1, "bump")
    return document


def test_bump_latest_from_v1_17_takes_the_variant_and_stages_both(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_bump(superproject, shared_cache, "latest")) == 0
    out = capsys.readouterr().out
    assert "latest is v1.19.0" in out
    assert "Bump docker/chat/mas/repo from v1.17.0 to v1.19.0\n" in out
    assert "the harness's v1.18+ variant" in out
    assert "Not taken: rebased: 1 of 2 hunks of patch-dockerfile.patch need a human on v1.19.0" in out
    assert git(superproject, "status", "--porcelain") == f"M  {PATCH}\nM  {SUBMODULE}"
    assert git(superproject / SUBMODULE, "rev-parse", "HEAD") == git(
        superproject / SUBMODULE, "rev-parse", "v1.19.0^{}"
    )
    assert git(superproject, "rev-parse", f":{SUBMODULE}") == git(superproject / SUBMODULE, "rev-parse", "HEAD")
    assert (superproject / PATCH).read_bytes() == V1_18_PATCH.read_bytes()
    assert main(["verify", "--superproject", str(superproject), "--cache-dir", str(shared_cache)]) == 0


def test_a_dry_run_prints_the_plan_and_the_message_and_writes_nothing(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = git_state(superproject)
    assert main(_bump(superproject, shared_cache, "v1.19.0", "--dry-run", "--json")) == 0
    document = _document(capsys)
    plan = document["bump"]
    assert (plan["from"], plan["to"], plan["take"], document["dry_run"]) == ("v1.17.0", "v1.19.0", "variant", True)
    assert plan["steps"][0] == f"check out v1.19.0 ({plan['commit'][:12]}) in {SUBMODULE}"
    assert document["message"].startswith(f"Bump {SUBMODULE} from v1.17.0 to v1.19.0\n")
    assert_git_state_unchanged(superproject, before)


def test_commit_commits_with_the_message_as_the_user(
    superproject: Path, shared_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = tmp_path / "message.txt"
    argv = _bump(superproject, shared_cache, "v1.19.0", "--commit", "--message-file", str(message))
    assert main(argv) == 0
    assert "commit message:" not in capsys.readouterr().out, "the message went to the file"
    assert git(superproject, "status", "--porcelain") == ""
    assert git(superproject, "log", "-1", "--format=%B") == message.read_text().rstrip("\n")
    assert git(superproject, "log", "-1", "--format=%an <%ae>") == "test <test@localhost>"
    assert git(superproject, "show", "--name-only", "--format=", "HEAD").splitlines() == [PATCH, SUBMODULE]


@pytest.mark.parametrize("on_a_branch", [False, True], ids=["detached", "on-a-branch"])
def test_a_failure_midway_leaves_everything_byte_identical(
    on_a_branch: bool, superproject: Path, shared_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commit is the last step: a hook that refuses it comes after the checkout, the patch and the staging."""
    if on_a_branch:
        git(superproject / SUBMODULE, "checkout", "--quiet", "-b", "ours")
    hook = superproject / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'not today' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = git_state(superproject)
    message = tmp_path / "message.txt"
    assert main(_bump(superproject, shared_cache, "latest", "--commit", "--message-file", str(message))) == 1
    error = capsys.readouterr().err
    assert "bump stopped at `commit`" in error
    assert "not today" in error
    assert_git_state_unchanged(superproject, before)
    assert not message.exists()


def test_nothing_fits_is_exit_1_and_nothing_is_changed(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = git_state(superproject)
    assert main(_bump(superproject, shared_cache, "v1.19.0", "--take", "refresh")) == 1
    out = capsys.readouterr().out
    assert "nothing fits v1.19.0, so nothing was changed" in out
    assert "rebased: 1 of 2 hunks of patch-dockerfile.patch need a human on v1.19.0" in out
    assert_git_state_unchanged(superproject, before)


def test_a_dirty_submodule_or_staged_changes_are_refused_by_name(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerfile = superproject / SUBMODULE / "Dockerfile"
    pristine = dockerfile.read_bytes()
    dockerfile.write_bytes(pristine + b"# local\n")
    assert main(_bump(superproject, shared_cache, "latest")) == 2
    assert f"submodule {SUBMODULE} has local changes (Dockerfile)" in capsys.readouterr().err
    dockerfile.write_bytes(pristine)

    (superproject / "notes.txt").write_text("mine\n")
    git(superproject, "add", "notes.txt")
    before = git_state(superproject)
    assert main(_bump(superproject, shared_cache, "latest")) == 2
    assert "would go into the bump's commit: notes.txt" in capsys.readouterr().err
    assert_git_state_unchanged(superproject, before)
    git(superproject, "reset", "--quiet", "notes.txt")

    (superproject / PATCH).write_bytes((superproject / PATCH).read_bytes() + b"\n")
    assert main(_bump(superproject, shared_cache, "latest")) == 2
    assert f"{PATCH} has changes not staged" in capsys.readouterr().err


def test_the_users_patch_is_rebased_when_every_hunk_merges(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A release that edits a line of the patch's context: git apply refuses it, the three-way merge does not."""
    submodule = superproject / SUBMODULE
    git(submodule, "checkout", "--quiet", "v1.19.0")
    dockerfile = submodule / "Dockerfile"
    edited = dockerfile.read_text().replace("  cargo install --locked \\\n", "  cargo install --locked --quiet \\\n", 1)
    dockerfile.write_text(edited)
    git(submodule, "-c", "user.name=up", "-c", "user.email=up@localhost", "commit", "--quiet", "-am", "quieter")
    git(submodule, "tag", "v1.20.0")
    git(submodule, "checkout", "--quiet", "v1.19.0")
    (superproject / PATCH).write_bytes(V1_18_PATCH.read_bytes())
    commit_all(superproject, "MAS v1.19.0 with the v1.18+ patch")

    assert main(_bump(superproject, shared_cache, "latest", "--json")) == 0
    document = _document(capsys)
    assert (document["latest"], document["bump"]["to"], document["bump"]["take"]) == ("v1.20.0", "v1.20.0", "refreshed")
    assert document["message"].startswith(f"Bump {SUBMODULE} from v1.19.0 to v1.20.0\n")
    assert "your patch, rebased by three-way merge" in document["message"]
    refreshed = (superproject / PATCH).read_bytes()
    assert refreshed != V1_18_PATCH.read_bytes()
    git(submodule, "apply", "--check", str(superproject / PATCH))
    assert main(["verify", "--superproject", str(superproject), "--cache-dir", str(shared_cache)]) == 0


def test_without_a_ref_it_fits_the_patch_to_a_bots_gitlink_move(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(superproject / SUBMODULE, "checkout", "--quiet", "v1.19.0")
    commit_all(superproject, "Bump docker/chat/mas/repo from v1.17.0 to v1.19.0")  # as Dependabot leaves it
    assert main(["verify", "--superproject", str(superproject), "--cache-dir", str(shared_cache)]) == 1
    capsys.readouterr()

    assert main(_bump(superproject, shared_cache)) == 0
    out = capsys.readouterr().out
    assert f"Fit {PATCH} to {SUBMODULE} at v1.19.0 (bumped from v1.17.0)\n" in out
    assert git(superproject, "status", "--porcelain") == f"M  {PATCH}"
    assert main(["verify", "--superproject", str(superproject), "--cache-dir", str(shared_cache)]) == 0

    assert main(_bump(superproject, shared_cache)) == 0, "fitted already: nothing to do"
    assert "up to date at v1.19.0" in capsys.readouterr().out


def test_a_release_the_submodule_lacks_is_fetched_into_it_from_its_remote(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    submodule = superproject / SUBMODULE
    release = git(submodule, "rev-parse", "v1.19.0^{commit}")
    # A clone made before v1.19.0: no ref reaches it, and its objects are gone.
    git(submodule, "tag", "-d", "v1.19.0")
    for ref in git(submodule, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes").split():
        git(submodule, "update-ref", "-d", ref)
    git(submodule, "reflog", "expire", "--expire=now", "--all")
    git(submodule, "gc", "--quiet", "--prune=now")
    assert subprocess.run(["git", "cat-file", "-e", release], cwd=submodule, check=False).returncode != 0

    assert main(_bump(superproject, shared_cache, "latest", "--dry-run", "--json")) == 0
    assert _document(capsys)["bump"]["fetch"] is True
    assert main(_bump(superproject, shared_cache, "latest")) == 0
    assert git(submodule, "rev-parse", "HEAD") == release
    assert git(submodule, "rev-parse", "v1.19.0^{commit}") == release, "the tag came with it"
    assert main(["verify", "--superproject", str(superproject), "--cache-dir", str(shared_cache)]) == 0


def test_a_bump_killed_midway_is_undone_by_the_next_one(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL at the commit step (a hook kills the harness: git's parent), after the checkout, the patch, the
    staging: the journal it leaves tells the next bump what to undo."""
    hook = superproject / ".git" / "hooks" / "pre-commit"
    hook.write_text('#!/bin/sh\nkill -9 "$(ps -o ppid= -p "$PPID" | tr -d " ")"\nsleep 5\n')
    hook.chmod(0o755)
    before = git_state(superproject)
    argv = [sys.executable, "-m", "harness", *_bump(superproject, shared_cache, "latest", "--commit")]
    killed = subprocess.run(argv, check=False, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert git(superproject, "status", "--porcelain") == f"M  {PATCH}\nM  {SUBMODULE}", "killed half-way"
    hook.unlink()

    assert main(_bump(superproject, shared_cache, "latest", "--dry-run")) == 2
    assert "an interrupted bump left" in capsys.readouterr().err
    # Undone first; then this bump's own plan finds nothing that fits and changes nothing.
    assert main(_bump(superproject, shared_cache, "latest", "--take", "refresh")) == 1
    assert "undid an interrupted bump first" in capsys.readouterr().out
    assert_git_state_unchanged(superproject, before)
    assert not (superproject / ".git" / "mas-harness-bump-journal").exists()


def test_an_interrupted_bump_is_not_undone_over_later_work(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = superproject / ".git" / "hooks" / "pre-commit"
    hook.write_text('#!/bin/sh\nkill -9 "$(ps -o ppid= -p "$PPID" | tr -d " ")"\nsleep 5\n')
    hook.chmod(0o755)
    argv = [sys.executable, "-m", "harness", *_bump(superproject, shared_cache, "latest", "--commit")]
    assert subprocess.run(argv, check=False, capture_output=True).returncode == -signal.SIGKILL
    hook.unlink()
    git(superproject, "commit", "--quiet", "-m", "the user commits the half-made bump themselves")
    assert main(_bump(superproject, shared_cache, "latest")) == 2
    error = capsys.readouterr().err
    assert "was committed since: remove" in error
    assert "mas-harness-bump-journal to keep things as they are" in error


def test_the_message_says_what_changed_in_upstreams_release_profile(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A release with thin LTO, as upstream's v1.22.0 has it, made in the submodule's own repository."""
    submodule = superproject / SUBMODULE
    git(submodule, "checkout", "--quiet", "v1.19.0")
    cargo = submodule / "Cargo.toml"
    cargo.write_text(
        cargo.read_text().replace("codegen-units = 1 ", "codegen-units = 16 ").replace("lto = true ", 'lto = "thin" ')
    )
    git(submodule, "-c", "user.name=up", "-c", "user.email=up@localhost", "commit", "--quiet", "-am", "thin LTO")
    git(submodule, "tag", "v1.22.0")
    git(submodule, "checkout", "--quiet", "v1.19.0")
    (superproject / PATCH).write_bytes(V1_18_PATCH.read_bytes())
    commit_all(superproject, "MAS v1.19.0 with the v1.18+ patch")

    assert main(_bump(superproject, shared_cache, "latest", "--json")) == 0
    document = _document(capsys)
    assert (document["bump"]["to"], document["bump"]["take"]) == ("v1.22.0", "unchanged")
    message = document["message"]
    assert message.startswith(f"Bump {SUBMODULE} from v1.19.0 to v1.22.0\n\n{PATCH}: fits as it is\n")
    assert (
        "upstream's release profile changes from v1.19.0 to v1.22.0: lto true -> thin, codegen-units 1 -> 16" in message
    )
    assert git(superproject, "status", "--porcelain") == f"M  {SUBMODULE}"


def test_a_superproject_below_the_top_of_its_repository(
    upstream_clone: Path, main_patch: Patch, shared_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pyproject.toml in chat/ of a larger repository: what git lists from the top is matched all the same."""
    mono = tmp_path / "mono"
    mono.mkdir()
    git(mono, "init", "--quiet")
    git(mono, "config", "user.email", "test@localhost")
    git(mono, "config", "user.name", "test")
    root = mono / "chat"
    root.mkdir()
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "--quiet", str(upstream_clone), SUBMODULE)
    git(root / SUBMODULE, "checkout", "--quiet", "v1.17.0")
    (root / PATCH).parent.mkdir(parents=True)
    (root / PATCH).write_bytes(main_patch.data)
    (root / "pyproject.toml").write_text(CONFIG)
    commit_all(mono, "chat with MAS at v1.17.0")
    (mono / "other.txt").write_text("mine\n")
    git(mono, "add", "other.txt")
    assert main(_bump(root, shared_cache, "latest")) == 2
    assert "would go into the bump's commit: other.txt" in capsys.readouterr().err
    git(mono, "reset", "--quiet", "other.txt")

    assert main(_bump(root, shared_cache, "latest", "--commit")) == 0
    capsys.readouterr()
    assert git(mono, "show", "--name-only", "--format=", "HEAD").splitlines() == [f"chat/{PATCH}", f"chat/{SUBMODULE}"]
    assert main(["verify", "--superproject", str(root), "--cache-dir", str(shared_cache)]) == 0
