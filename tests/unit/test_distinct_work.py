"""compat's cost grows with the distinct work, not with the number of refs.

The upstream is a clone of the bundled test data with extra release tags made by the
test, each on a commit of its own that keeps the tree of a pinned release: many refs,
few distinct Dockerfiles, as upstream's point releases mostly are. What a run did is
read from git's own trace (GIT_TRACE) and from the verdict counts in the JSON report.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.cli.main import main
from tests.support import git

BASES = ("v1.7.0", "v1.17.0", "v1.19.0")  # three distinct Dockerfiles (and patch variants: two)
# The commands the harness itself starts (fetch's own helpers, such as upload-pack, are not counted).
HARNESS_COMMANDS = ("ls-remote", "fetch", "for-each-ref", "cat-file", "rev-parse", "apply", "tag", "log")


@pytest.fixture
def point_releases(bundle: Path, tmp_path: Path) -> Path:
    """BASE.1 ... BASE.4 for each base: a commit each, on top of the base, with the base's tree."""
    repo = tmp_path / "upstream"
    subprocess.run(["git", "clone", "--quiet", str(bundle), str(repo)], check=True, capture_output=True)
    git(repo, "config", "uploadpack.allowFilter", "true")
    for base in BASES:
        for n in range(1, 5):
            commit = git(
                repo,
                "-c",
                "user.name=test",
                "-c",
                "user.email=test@localhost",
                "commit-tree",
                f"{base}^{{tree}}",
                "-p",
                f"{base}^{{commit}}",
                "-m",
                f"{base}.{n}",
            )
            git(repo, "tag", f"{base}.{n}", commit)
    return repo


def _run(
    capsys: pytest.CaptureFixture[str], trace: Path, upstream: Path, cache: Path, refs: list[str]
) -> tuple[dict[str, Any], Counter[str]]:
    assert main(["compat", "--upstream", str(upstream), "--cache-dir", str(cache), "--json", *refs]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    commands = Counter(re.findall(r"trace: built-in: git (?:-c \S+ )*(?:--git-dir=\S+ )?([a-z-]+)", trace.read_text()))
    trace.unlink()
    return document, Counter({name: commands[name] for name in HARNESS_COMMANDS})


def test_twelve_refs_cost_what_three_do(
    point_releases: Path,
    tmp_path: Path,
    fresh_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trace = tmp_path / "git-trace"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    few = [f"{base}.1" for base in BASES]
    many = [f"{base}.{n}" for base in BASES for n in range(1, 5)]

    # The session's verdict store may hold these Dockerfiles' verdicts already: computed or read back, each
    # distinct Dockerfile is looked up once.
    document, twelve = _run(capsys, trace, point_releases, fresh_cache, many)
    assert [r["ref"] for r in document["refs"]] == many
    assert all(r["ok"] and r["drift"]["differs"] is False for r in document["refs"]), "each is its base's post-image"
    verdicts = document["verdicts"]
    assert verdicts["computed"] + verdicts["reused"] == 3, "once per distinct Dockerfile"

    # Three refs from another empty checkout cache, with the same verdict store.
    few_cache = tmp_path / "few"
    few_cache.mkdir()
    (few_cache / "verdicts").symlink_to(fresh_cache / "verdicts", target_is_directory=True)
    document, three = _run(capsys, trace, point_releases, few_cache, few)
    assert [r["ref"] for r in document["refs"]] == few
    assert (document["verdicts"]["computed"], document["verdicts"]["reused"]) == (0, 3)
    assert twelve == three, "the same git commands for 12 refs as for 3"
    # One fetch for the refs, one for the blobs they need, one for the pins their post-images are compared with.
    assert (twelve["ls-remote"], twelve["fetch"]) == (1, 3)

    # Warm: the same refs again ask the remote once and fetch nothing.
    document, warm = _run(capsys, trace, point_releases, fresh_cache, many)
    assert (warm["ls-remote"], warm["fetch"]) == (1, 0)
    assert (document["verdicts"]["computed"], document["verdicts"]["reused"]) == (0, 3)
