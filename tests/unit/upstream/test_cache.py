"""The checkout cache: reuse, partial fetches, concurrency."""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from harness.errors import UpstreamError
from harness.upstream.cache import UpstreamCache
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
