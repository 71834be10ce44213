"""Fresh answers from a warm cache: refs asked of the remote on every run, --offline, revisions held to the pins.

The upstream is a clone of the bundled test data that the test changes between two runs
sharing one cache, as an upstream changes between two runs of a user's CI. Which git
commands a run starts is read from git's own trace (GIT_TRACE), not from the harness.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.cli.main import main
from harness.config.pins import Pin, load_pins
from harness.errors import UpstreamError
from harness.files import MAX_INPUT_BYTES
from harness.resources import patches_dir, pins_file
from harness.upstream.cache import UpstreamCache
from harness.upstream.source import UpstreamSource
from tests.support import MakeRepo, git

PINNED = "v1.17.0"


SAME_DOCKERFILE = "v1.16.0"  # another release with v1.17.0's Dockerfile (and another commit)


@pytest.fixture
def upstream(bundle: Path, tmp_path: Path) -> Path:
    """A clone of the bundle serving partial fetches, as a hosted upstream does."""
    repo = tmp_path / "upstream"
    subprocess.run(["git", "clone", "--quiet", str(bundle), str(repo)], check=True, capture_output=True)
    git(repo, "config", "uploadpack.allowFilter", "true")
    git(repo, "config", "user.email", "test@localhost")
    git(repo, "config", "user.name", "test")
    git(repo, "checkout", "--quiet", "main")
    return repo


def _compat(
    capsys: pytest.CaptureFixture[str], upstream: Path | str, cache: Path, *args: str
) -> tuple[int, dict[str, Any]]:
    """A compat run's exit code and JSON report; its stderr is left for _error_line to read."""
    code = main(["compat", "--upstream", str(upstream), "--cache-dir", str(cache), "--json", *args])
    captured = capsys.readouterr()
    if captured.err:
        print(captured.err, end="", file=sys.stderr)  # back where _error_line finds it
    return code, json.loads(captured.out) if captured.out.strip() else {}


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("mas-harness: error: ")
    return err[0]


def _git_commands(trace: Path) -> Counter[str]:
    """How many times each git command ran, from GIT_TRACE's `built-in: git CMD` lines; the trace is then reset."""
    text = trace.read_text() if trace.exists() else ""
    trace.unlink(missing_ok=True)
    found = re.findall(r"trace: built-in: git (?:-c \S+ )*(?:--git-dir=\S+ )?([a-z-]+)", text)
    return Counter(found)


@pytest.fixture
def trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "git-trace"
    monkeypatch.setenv("GIT_TRACE", str(path))
    return path


def _moved_pins(tmp_path: Path, tag: str) -> Path:
    """The harness's pins with `tag` pinned to a Dockerfile upstream never had: as if upstream moved the tag."""
    text = pins_file().read_text()
    start = text.index(f'tag = "{tag}"')
    end = text.index("[[pin]]", start)
    block = re.sub(r'dockerfile_blob = "\w+"', f'dockerfile_blob = "{"0" * 40}"', text[start:end])
    pins = tmp_path / "moved-pins.toml"
    pins.write_text(text[:start] + block + text[end:])
    if not (tmp_path / "patches").exists():
        (tmp_path / "patches").symlink_to(patches_dir())
    return pins


# -- refs are asked of the remote on every run ---------------------------------------------------------


def test_a_branch_that_moved_is_seen_on_a_warm_cache(
    upstream: Path, tmp_path: Path, fresh_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = fresh_cache
    code, before = _compat(capsys, upstream, cache, "main")
    assert code == 0
    dockerfile = (upstream / "Dockerfile").read_text()
    (upstream / "Dockerfile").write_text(
        dockerfile.replace("ARG NODEJS_VERSION=24.15.0\n", "ARG NODEJS_VERSION=24.16.0\n")
    )
    git(upstream, "commit", "--quiet", "-am", "a newer Node.js")

    code, after = _compat(capsys, upstream, cache, "main")
    assert code == 0
    [old], [new] = before["refs"], after["refs"]
    assert new["upstream_commit"] == git(upstream, "rev-parse", "main") != old["upstream_commit"]
    assert new["dockerfile_blob"] == git(upstream, "rev-parse", "main:Dockerfile") != old["dockerfile_blob"]
    assert after["offline"] is False


def test_a_tag_moved_upstream_is_exit_2_on_a_warm_cache(
    upstream: Path, tmp_path: Path, fresh_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = fresh_cache
    assert _compat(capsys, upstream, cache, PINNED)[0] == 0
    pinned_blob = git(upstream, "rev-parse", f"{PINNED}:Dockerfile")

    # Re-tagged onto a commit with another Dockerfile: the pin's Dockerfile no longer matches.
    git(upstream, "tag", "--force", PINNED, "v1.18.0")
    assert _compat(capsys, upstream, cache, PINNED)[0] == 2
    error = _error_line(capsys)
    assert PINNED in error and pinned_blob in error and git(upstream, "rev-parse", "v1.18.0:Dockerfile") in error

    # Re-tagged onto another commit with the very same Dockerfile: still not the release that was pinned.
    git(upstream, "tag", "--force", PINNED, SAME_DOCKERFILE)
    assert git(upstream, "rev-parse", f"{PINNED}:Dockerfile") == pinned_blob
    assert _compat(capsys, upstream, cache, PINNED)[0] == 2
    error = _error_line(capsys)
    assert f"{PINNED}: upstream has it at commit" in error and "was the tag moved" in error


def test_one_ls_remote_per_run_and_only_what_is_missing_is_fetched(
    upstream: Path, tmp_path: Path, fresh_cache: Path, trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = fresh_cache
    refs = ("v1.15.0", "v1.16.0", "v1.17.0", "v1.18.0", "main")
    assert _compat(capsys, upstream, cache, *refs)[0] == 0
    cold = _git_commands(trace)
    # Refs in one fetch, the blobs read in one more: not one of each per ref.
    assert (cold["ls-remote"], cold["fetch"]) == (1, 2), cold

    assert _compat(capsys, upstream, cache, *refs)[0] == 0
    warm = _git_commands(trace)
    assert (warm["ls-remote"], warm["fetch"]) == (1, 0), warm

    git(upstream, "tag", "v1.17.0-again", "v1.17.0")  # a new tag on a commit the cache already holds
    assert _compat(capsys, upstream, cache, *refs, "v1.17.0-again")[0] == 0
    again = _git_commands(trace)
    assert (again["ls-remote"], again["fetch"]) == (1, 1), again


# -- --offline -------------------------------------------------------------------------------------------


def test_offline_answers_from_the_cache_alone_and_says_so(
    upstream: Path, tmp_path: Path, fresh_cache: Path, trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"file://{upstream}"
    cache = fresh_cache
    code, online = _compat(capsys, url, cache, "v1.7.0")
    assert code == 0
    shutil.rmtree(upstream)  # the remote is out of reach, as on a plane

    assert _compat(capsys, url, cache, "v1.7.0")[0] == 2
    assert "cannot list the refs of upstream" in (error := _error_line(capsys)) and "pass --offline" in error
    _git_commands(trace)

    code, offline = _compat(capsys, url, cache, "v1.7.0", "--offline")
    assert code == 0
    assert offline["offline"] is True and online["offline"] is False
    timeless = [[{k: v for k, v in r.items() if k != "duration"} for r in d["refs"]] for d in (online, offline)]
    assert timeless[0] == timeless[1]
    commands = _git_commands(trace)
    assert (commands["ls-remote"], commands["fetch"]) == (0, 0), commands

    assert main(["compat", "--upstream", url, "--cache-dir", str(cache), "v1.7.0", "--offline"]) == 0
    assert "offline: refs were answered from the cache alone" in capsys.readouterr().out

    assert main(["compat", "--upstream", url, "--cache-dir", str(cache), "v1.8.0", "--offline"]) == 2
    assert "'v1.8.0' is not in the upstream cache and --offline fetches nothing" in _error_line(capsys)
    assert main(["compat", "--upstream", url, "--cache-dir", str(cache), "--latest", "--offline"]) == 2
    assert "--latest" in _error_line(capsys)


def test_offline_finds_a_local_upstream_that_is_gone_by_its_name(
    bundle: Path, tmp_path: Path, fresh_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy.bundle"
    shutil.copy(bundle, copy)
    assert _compat(capsys, copy, fresh_cache, "v1.7.0")[0] == 0
    copy.unlink()
    assert _compat(capsys, copy, fresh_cache, "v1.7.0")[0] == 2
    assert "neither a URL nor an existing repository or bundle" in _error_line(capsys)
    code, document = _compat(capsys, copy, fresh_cache, "v1.7.0", "--offline")
    assert (code, document["offline"], document["refs"][0]["state"]) == (0, True, "applies")


def test_offline_with_an_empty_cache_is_exit_2(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compat", "--upstream", str(bundle), "--cache-dir", str(tmp_path / "c"), "--offline"]) == 2
    assert "has nothing of" in _error_line(capsys)


# -- revision expressions -------------------------------------------------------------------------------


def _pin(tag: str) -> Pin:
    pin = load_pins().get(tag)
    assert pin is not None
    return pin


@pytest.mark.parametrize("ref", [f"{PINNED}^0", f"{PINNED}^{{commit}}", f"{PINNED}^{{}}"])
def test_a_revision_of_a_pinned_tag_is_held_to_its_pin(
    bundle: Path, tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str], ref: str
) -> None:
    pin = _pin(PINNED)
    code, document = _compat(capsys, bundle, shared_cache, ref)
    assert code == 0
    [result] = document["refs"]
    assert (result["ref"], result["upstream_commit"], result["dockerfile_blob"]) == (
        ref,
        pin.upstream_commit,
        pin.dockerfile_blob,
    )
    moved = _moved_pins(tmp_path, PINNED)
    args = ["compat", "--upstream", str(bundle), "--cache-dir", str(shared_cache), "--pins", str(moved)]
    assert main([*args, ref]) == 2
    error = _error_line(capsys)
    assert f"{PINNED}: upstream Dockerfile is blob" in error and f"({ref} is that tag's commit)" in error


def test_a_commit_id_is_held_to_the_pin_of_its_tag(
    upstream: Path, tmp_path: Path, fresh_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit = git(upstream, "rev-parse", f"{PINNED}^{{commit}}")
    args = ["compat", "--upstream", str(upstream), "--cache-dir", str(fresh_cache)]
    assert main([*args, "--pins", str(_moved_pins(tmp_path, PINNED)), commit]) == 2
    assert PINNED in _error_line(capsys)
    code, document = _compat(capsys, upstream, fresh_cache, commit)
    assert (code, document["refs"][0]["upstream_commit"]) == (0, _pin(PINNED).upstream_commit)


def test_an_ancestor_is_held_to_the_pin_of_its_tag(
    bundle: Path, tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A bundle is fetched whole, so `~1` can be answered: it is v1.16.0's commit, held to v1.16.0's pin.
    args = ["compat", "--upstream", str(bundle), "--cache-dir", str(shared_cache)]
    assert main([*args, "--pins", str(_moved_pins(tmp_path, SAME_DOCKERFILE)), f"{PINNED}~1"]) == 2
    assert SAME_DOCKERFILE in _error_line(capsys)
    code, document = _compat(capsys, bundle, shared_cache, f"{PINNED}~1")
    assert (code, document["refs"][0]["upstream_commit"]) == (0, _pin(SAME_DOCKERFILE).upstream_commit)


def test_history_a_shallow_cache_lacks_is_exit_2(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compat", "--upstream", str(upstream), "--cache-dir", str(tmp_path / "c"), f"{PINNED}~1"]) == 2
    assert f"cannot resolve '{PINNED}~1'" in _error_line(capsys)


MOVED_TAG_COMMANDS = {
    "compat": lambda ref, out: ["compat", "--ref", ref],
    "check": lambda ref, out: ["check", "--ref", ref],
    "patch": lambda ref, out: ["patch", "--for", ref, "--output", str(out)],
    "refresh": lambda ref, out: ["refresh", "--ref", ref, "--patch", str(patches_dir() / "patch-dockerfile.patch"),
                                 "--output", str(out)],
}  # fmt: skip


@pytest.mark.parametrize("command", MOVED_TAG_COMMANDS.values(), ids=MOVED_TAG_COMMANDS.keys())
def test_a_moved_tag_is_refused_by_every_command_however_it_is_spelled(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: Callable[[str, Path], list[str]]
) -> None:
    git(upstream, "tag", "--force", PINNED, "v1.18.0")  # re-tagged onto a commit with another Dockerfile
    moved = git(upstream, "rev-parse", "v1.18.0^{commit}")
    out = tmp_path / "out.patch"
    for ref in (PINNED, f"{PINNED}~0", f"{PINNED}^0", f"{PINNED}^{{commit}}", moved):
        argv = [*command(ref, out), "--upstream", str(upstream), "--cache-dir", str(tmp_path / "cache")]
        assert main(argv) == 2, ref
        error = _error_line(capsys)
        assert f"{PINNED}: upstream Dockerfile is blob" in error and "was the tag moved" in error, (ref, error)
        assert not out.exists()


@pytest.mark.parametrize(
    ("ref", "kind"), [("a-tree", "tree"), ("a-blob", "blob"), ("a-tree^0", "tree"), ("an-annotated-tree", "tree")]
)
def test_a_tag_that_points_at_a_tree_or_a_blob_is_one_line_and_exit_2(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str, kind: str
) -> None:
    git(upstream, "tag", "a-tree", f"{PINNED}^{{tree}}")
    git(upstream, "tag", "a-blob", f"{PINNED}:Dockerfile")
    git(upstream, "tag", "--annotate", "--message", "a tree", "an-annotated-tree", f"{PINNED}^{{tree}}")
    assert main(["compat", "--upstream", str(upstream), "--cache-dir", str(tmp_path / "cache"), ref]) == 2
    error = _error_line(capsys)
    assert f"tag {ref.removesuffix('^0')!r} of upstream {upstream} points at a {kind}, not a commit" in error


def test_a_short_commit_id_is_refused_outside_a_superproject_saying_why(
    upstream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = git(upstream, "rev-parse", "--short=12", f"{PINNED}^{{commit}}")
    for offline in ((), ("--offline",)):
        argv = ["compat", "--upstream", str(upstream), "--cache-dir", str(tmp_path / "cache"), *offline, short]
        if offline:
            assert main(["compat", "--upstream", str(upstream), "--cache-dir", str(tmp_path / "cache"), PINNED]) == 0
            capsys.readouterr()
        assert main(argv) == 2
        assert repr(short) in (error := _error_line(capsys)) and "if it is a commit id, name it in full" in error


@pytest.mark.parametrize("ref", ["HEAD@{1}", "main@{upstream}", "v1.16.0..v1.17.0", f"{PINNED}:Dockerfile", "v1.*"])
def test_other_revision_expressions_are_refused(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str
) -> None:
    assert main(["compat", "--upstream", str(bundle), "--cache-dir", str(tmp_path / "c"), ref]) == 2
    assert f"invalid ref {ref!r}" in _error_line(capsys)


# -- blobs ---------------------------------------------------------------------------------------------


def test_an_upstream_blob_far_beyond_a_dockerfile_is_refused_with_its_size(
    make_repo: MakeRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    size = MAX_INPUT_BYTES + 1
    repo = make_repo({"Dockerfile": b"#" * (size - 1) + b"\n"})
    git(repo, "config", "uploadpack.allowFilter", "true")
    git(repo, "tag", "v9.0.0")
    cache = UpstreamCache(tmp_path / "cache", UpstreamSource.parse(str(repo)))
    resolved = cache.resolve("v9.0.0")
    with pytest.raises(UpstreamError, match=f"is {size:,} bytes"):
        cache.read_blob(resolved.dockerfile_blob)
    assert main(["compat", "--upstream", str(repo), "--cache-dir", str(tmp_path / "c2"), "v9.0.0"]) == 2
    assert f"{size:,} bytes" in _error_line(capsys)
