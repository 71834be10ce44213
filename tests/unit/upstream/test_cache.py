"""The checkout cache: reuse, partial fetches, concurrency, and healing what a killed run or a full disk left."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import ToolFailed, UpstreamError
from harness.upstream.cache import DAMAGED_SUFFIX, UpstreamCache
from harness.upstream.source import UpstreamSource
from tests.support import git


def test_cached_refs_are_reused_without_the_source_offline(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.bundle"
    shutil.copy(bundle, copy)
    cache = UpstreamCache(tmp_path / "cache", UpstreamSource.parse(str(copy)))
    first = cache.resolve("v1.7.0")
    copy.unlink()  # an offline resolve must not need the source any more
    source = UpstreamSource(location=str(copy), kind="bundle")
    again = UpstreamCache(tmp_path / "cache", source, offline=True).resolve("v1.7.0")
    assert again == first
    assert first.upstream_commit == "c2814921899503474b09b088d1722ef6c550065a"
    # Online, every run asks the source where the ref is now, and says how to do without it.
    with pytest.raises(UpstreamError, match="pass --offline"):
        UpstreamCache(tmp_path / "cache", source).resolve("v1.7.0")


def _resolve_in_another_process(cache_root: str, bundle: str) -> str:
    return UpstreamCache(Path(cache_root), UpstreamSource.parse(bundle)).resolve("v1.17.0").dockerfile_blob


def test_two_runs_sharing_the_cache(bundle: Path, tmp_path: Path) -> None:
    with ProcessPoolExecutor(max_workers=4) as pool:
        blobs = list(pool.map(_resolve_in_another_process, [str(tmp_path)] * 8, [str(bundle)] * 8))
    assert set(blobs) == {"ba2ed16c8401fffb9bab73e03704e95ad5c87e6a"}


def test_partial_fetch_takes_one_commit_and_only_the_blobs_read(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    git(tmp_path, "init", "--quiet", str(remote))
    git(remote, "config", "uploadpack.allowFilter", "true")
    (remote / "Dockerfile").write_text("FROM scratch\n")
    (remote / "big.bin").write_bytes(b"x" * 2_000_000)
    git(remote, "add", "-A")
    git(remote, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "one")
    (remote / "big.bin").write_bytes(b"y" * 2_000_000)
    git(remote, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-am", "two")
    git(remote, "tag", "v1")

    cache = UpstreamCache(tmp_path / "cache", UpstreamSource.parse(str(remote)))
    resolved = cache.resolve("v1")
    assert cache.read_blob(resolved.dockerfile_blob) == b"FROM scratch\n"
    objects = subprocess.run(
        ["git", f"--git-dir={cache.repo}", "rev-list", "--objects", "--all", "--missing=print"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    missing = [line for line in objects if line.startswith("?")]
    assert len(missing) == 1, "the 2 MB blob stays on the remote"
    commits = subprocess.run(
        ["git", f"--git-dir={cache.repo}", "rev-list", "--all"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(commits) == 1, "shallow: one commit, no history"


def test_branch_and_commit_refs(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(remote))
    git(remote, "config", "uploadpack.allowAnySHA1InWant", "true")
    (remote / "Dockerfile").write_text("FROM scratch\n")
    git(remote, "add", "-A")
    git(remote, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "one")
    sha = git(remote, "rev-parse", "HEAD")
    cache = UpstreamCache(tmp_path / "cache", UpstreamSource.parse(str(remote)))
    assert cache.resolve("main").commit == sha
    assert UpstreamCache(tmp_path / "cache2", UpstreamSource.parse(str(remote))).resolve(sha).commit == sha
    with pytest.raises(UpstreamError, match="unknown ref"):
        cache.resolve("no-such-branch")
    with pytest.raises(UpstreamError, match="invalid ref"):
        cache.resolve("--upload-pack=evil")


def test_tags_reachable_from_a_commit(bundle: Path, tmp_path: Path) -> None:
    full = UpstreamCache(tmp_path / "full", UpstreamSource.parse(str(bundle)))
    v1_3 = full.resolve("v1.3.0").commit
    # A bundle is fetched whole: the history below the commit and its tags are there.
    assert set(full.tags_reachable_from(v1_3)) >= {"v0.14.0", "v1.2.0", "v1.3.0"}
    assert "v1.4.0" not in full.tags_reachable_from(v1_3)

    remote = tmp_path / "remote"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(remote))
    for n in (1, 2):
        (remote / "Dockerfile").write_text(f"FROM scratch:{n}\n")
        git(remote, "add", "-A")
        git(remote, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", str(n))
        git(remote, "tag", f"v1.{n}.0")
    shallow = UpstreamCache(tmp_path / "shallow", UpstreamSource.parse(str(remote)))
    head = shallow.resolve("main").commit
    # A shallow fetch of a branch has no history: only the tag on the commit itself (git follows
    # tags pointing at what it fetched), not v1.1.0 below it.
    assert shallow.tags_reachable_from(head) == ["v1.2.0"]


# -- a cache that heals: what a killed run, a full disk or a slipped hand leaves ---------------------------------------


def _age(path: Path, seconds: float) -> None:
    """Date `path` `seconds` back (forward, when negative) from now."""
    when = time.time() - seconds
    os.utime(path, (when, when))


def _stale_shallow_lock(repo: Path) -> None:
    (repo / "shallow.lock").write_text("")
    _age(repo / "shallow.lock", 3600)


def _stale_ref_lock(repo: Path) -> None:
    lock = repo / "refs" / "tags" / "v1.17.0.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    _age(lock, 3600)


def _truncated_packs(repo: Path) -> None:
    for pack in (repo / "objects" / "pack").glob("*.pack"):
        os.truncate(pack, pack.stat().st_size // 2)


def _truncated_index(repo: Path) -> None:
    for index in (repo / "objects" / "pack").glob("*.idx"):
        os.truncate(index, index.stat().st_size - 7)


def _deleted_head(repo: Path) -> None:
    (repo / "HEAD").unlink()


def _dangling_link(repo: Path) -> None:
    shutil.rmtree(repo)
    repo.symlink_to(repo.parent / "gone-elsewhere")


LEFT_LOCKS = {
    "shallow-lock": (_stale_shallow_lock, "removed shallow.lock, left by a run that was stopped"),
    "ref-lock": (_stale_ref_lock, "removed refs/tags/v1.17.0.lock, left by a run that was stopped"),
}
DAMAGE = {
    "truncated-packs": (_truncated_packs, "was damaged (pack pack-"),
    "truncated-index": (_truncated_index, "was damaged (the index of pack pack-"),
    "deleted-head": (_deleted_head, "was damaged (its HEAD is missing)"),
    "dangling-link": (_dangling_link, "was damaged (it is a symbolic link to"),
}
Damage = tuple[Callable[[Path], None], str]


def _mirror(bundle: Path, tmp_path: Path) -> Path:
    """A repository made from the bundle: fetched shallow and blobless, as a URL is."""
    repo = tmp_path / "upstream.git"
    subprocess.run(["git", "clone", "--quiet", "--mirror", str(bundle), str(repo)], check=True)
    return repo


@pytest.fixture(params=["path", "bundle"])
def upstream(request: pytest.FixtureRequest, bundle: Path, tmp_path: Path) -> Path:
    """The bundle itself (fetched whole), or a repository made from it."""
    return bundle if request.param == "bundle" else _mirror(bundle, tmp_path)


def _compat(upstream: Path, cache: Path, ref: str, *extra: str) -> list[str]:
    return ["compat", "--upstream", str(upstream), "--cache-dir", str(cache), "--ref", ref, "--json", *extra]


def _damaged_then_run(
    upstream: Path, cache: Path, make: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> tuple[Path, str]:
    """v1.7.0 in the cache, the damage done, then a run for v1.17.0 (not in a cache made from the repository yet,
    so that run fetches): the repository's path and the run's standard error."""
    assert main(_compat(upstream, cache, "v1.7.0")) == 0
    (repo,) = (cache / "repos").glob("*.git")
    make(repo)
    capsys.readouterr()
    assert main(_compat(upstream, cache, "v1.17.0")) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert {r["ref"]: r["ok"] for r in json.loads(captured.out)["refs"]} == {"v1.17.0": True}
    assert main(_compat(upstream, cache, "v1.17.0", "--offline")) == 0, "what the run fetched, the cache holds"
    assert capsys.readouterr().err == "", "healed once, and for good"
    return repo, " ".join(captured.err.split())


@pytest.mark.parametrize("damage", LEFT_LOCKS.values(), ids=LEFT_LOCKS.keys())
def test_a_lock_a_stopped_run_left_in_the_cache_is_cleared_under_the_cache_lock_with_a_note(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Damage
) -> None:
    make, note = damage
    repo, err = _damaged_then_run(_mirror(bundle, tmp_path), tmp_path / "cache", make, capsys)
    assert note in err
    assert list(repo.glob("*.lock")) == [] and list((repo / "refs").rglob("*.lock")) == []


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_cache_repository_is_set_aside_and_fetched_again_with_a_note(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Damage
) -> None:
    make, note = damage
    repo, err = _damaged_then_run(upstream, tmp_path / "cache", make, capsys)
    assert note in err and f"set aside as {repo.name}{DAMAGED_SUFFIX}, fetching it again" in err
    assert (repo / "HEAD").is_file() and not repo.is_symlink()


def test_the_damaged_repository_is_kept_aside_for_a_look_and_only_the_last_one(bundle: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for _ in range(2):
        assert main(_compat(bundle, cache, "v1.7.0")) == 0
        (repo,) = (cache / "repos").glob("*.git")
        _deleted_head(repo)
        assert main(_compat(bundle, cache, "v1.7.0")) == 0
    aside = sorted(p.name for p in (cache / "repos").iterdir() if p.name.endswith(DAMAGED_SUFFIX))
    assert aside == [f"{repo.name}{DAMAGED_SUFFIX}"]
    assert (repo.parent / aside[0] / "objects").is_dir() and not (repo.parent / aside[0] / "HEAD").exists()


def test_offline_a_damaged_cache_is_one_line_and_exit_2(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert main(_compat(bundle, cache, "v1.7.0")) == 0
    (repo,) = (cache / "repos").glob("*.git")
    _truncated_packs(repo)
    capsys.readouterr()
    assert main(_compat(bundle, cache, "v1.7.0", "--offline")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is damaged (pack pack-" in err[0] and "run once without --offline" in err[0], err
    assert (repo / "HEAD").is_file(), "offline, nothing is set aside: the next run that can fetch does it"


def test_a_lock_younger_than_the_run_is_left_to_its_owner_and_named_in_full(tmp_path: Path, bundle: Path) -> None:
    """A lock file this run did not see before it took the cache lock is not ours to clear (a git run by hand)."""
    upstream = _mirror(bundle, tmp_path)
    cache = UpstreamCache(tmp_path / "cache", UpstreamSource.parse(str(upstream)))
    cache.resolve("v1.7.0")
    lock = cache.repo / "shallow.lock"
    lock.write_text("")
    _age(lock, -3600)
    # git refusing, not the user's ref: a tool's failure (exit 5), quoting git.
    with pytest.raises(ToolFailed, match=re.escape(f"Unable to create '{lock}': File exists")):
        UpstreamCache(tmp_path / "cache", UpstreamSource.parse(str(upstream))).resolve("v1.17.0")
    assert lock.exists()


def test_a_cache_directory_that_is_a_dangling_link_is_one_line_and_exit_2(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    cache.symlink_to(tmp_path / "a-disk-not-mounted")
    assert main(_compat(bundle, cache, "v1.7.0")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"is a symbolic link to {tmp_path / 'a-disk-not-mounted'}, which does not exist" in err[0]
    assert not (tmp_path / "a-disk-not-mounted").exists()
