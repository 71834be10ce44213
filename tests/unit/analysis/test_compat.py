"""compat on refs no pin speaks for: tags past the last pin, branches, commits, --latest; what a run costs; one
odd ref among several.

The upstream here is a clone of the bundled test data with releases the bundle
does not have, made by the test: v1.20.0 (v1.19.0's Dockerfile with a newer
Node.js), v2.0.0 (the same commit), a `feature` branch with one more change and a
pre-release tag on it.

compat's cost grows with the distinct work, not with the number of refs: an upstream with
extra release tags, each on a commit of its own that keeps the tree of a pinned release
(many refs, few distinct Dockerfiles, as upstream's point releases mostly are). What a run
did is read from git's own trace (GIT_TRACE) and from the verdict counts in the JSON report.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness import proc
from harness.cli.main import main
from harness.patch.apply import State, patched_contents
from harness.patch.patchfile import Patch
from harness.resources import patches_dir
from harness.upstream import cache as cache_module
from harness.upstream.cache import DOCKERFILE, UpstreamCache
from tests.support import MakeRepo, git

NODE_LINE = "ARG NODEJS_VERSION=24.15.0\n"


def _commit(repo: Path, message: str, *tags: str) -> str:
    git(repo, "commit", "--quiet", "-am", message)
    for tag in tags:
        git(repo, "tag", tag)
    return git(repo, "rev-parse", "HEAD")


def _edit(repo: Path, old: str, new: str) -> None:
    text = (repo / "Dockerfile").read_text()
    assert text.count(old) == 1, old
    (repo / "Dockerfile").write_text(text.replace(old, new))


@pytest.fixture
def upstream(bundle: Path, tmp_path: Path) -> Path:
    repo = tmp_path / "upstream"
    subprocess.run(["git", "clone", "--quiet", str(bundle), str(repo)], check=True, capture_output=True)
    git(repo, "config", "user.email", "test@localhost")
    git(repo, "config", "user.name", "test")
    git(repo, "checkout", "--quiet", "main")
    _edit(repo, NODE_LINE, "ARG NODEJS_VERSION=24.16.0\n")
    _commit(repo, "v1.20.0", "v1.20.0", "v2.0.0")
    git(repo, "checkout", "--quiet", "-b", "feature")
    _edit(repo, "ARG OPA_VERSION=1.13.1\n", "ARG OPA_VERSION=1.14.0\n")
    _commit(repo, "feature work", "v2.1.0-rc.0")
    git(repo, "checkout", "--quiet", "main")
    return repo


def _compat(
    capsys: pytest.CaptureFixture[str], upstream: Path, cache: Path, *args: str
) -> tuple[int, list[dict[str, Any]]]:
    code = main(["compat", "--upstream", str(upstream), "--cache-dir", str(cache), "--json", *args])
    out = capsys.readouterr().out
    if not out.strip():
        return code, []
    document = json.loads(out)
    assert (document["schema_version"], document["command"], document["mode"]) == (1, "compat", "pins")
    return code, document["refs"]


def test_unpinned_refs_get_a_variant_a_reason_static_checks_and_drift(
    upstream: Path, tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, results = _compat(capsys, upstream, shared_cache, "v1.20.0", "v2.0.0", "feature")
    assert code == 0
    by_ref = {r["ref"]: r for r in results}
    assert list(by_ref) == ["v1.20.0", "v2.0.0", "feature"]
    for result in results:
        assert (result["state"], result["expected"], result["ok"]) == ("applies", None, True)
        assert result["variant"]["name"] == "v1.18+"
        assert result["patch"] == "patches/patch-dockerfile-v1.18.patch"
        assert result["static"]["ok"] and result["static"]["checks"] > 0
        assert [h["status"] for h in result["hunks"]] == ["exact", "exact"]

    assert by_ref["v1.20.0"]["variant"]["basis"] == "in-range"
    assert by_ref["v2.0.0"]["variant"]["reason"] == (
        "v2.0.0: outside every range; using the v1.18+ variant (nearest lower range)"
    )
    # A shallow fetch of a branch has no history: no release tag to go by.
    assert by_ref["feature"]["variant"]["basis"] == "newest"
    assert "no release tag in its fetched history; using the newest range" in by_ref["feature"]["variant"]["reason"]

    drift = by_ref["v1.20.0"]["drift"]
    assert (drift["pin"], drift["differs"], drift["compared"], drift["changed_lines"]) == ("v1.19.0", True, "text", 2)
    assert "-ARG NODEJS_VERSION=24.15.0\n+ARG NODEJS_VERSION=24.16.0\n" in drift["diff"]
    assert drift["diff"].startswith("--- v1.19.0:Dockerfile (patched)\n+++ v1.20.0:Dockerfile (patched)\n")
    assert by_ref["feature"]["drift"]["changed_lines"] == 4


def test_the_table_says_why_and_how_much_drifted(
    upstream: Path,
    tmp_path: Path,
    shared_cache: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # wide enough for every column, the optional ones too
    argv = ["compat", "--upstream", str(upstream), "--cache-dir", str(shared_cache), "v2.0.0", "--ref", "v1.19.0"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "* v2.0.0: outside every range; using the v1.18+ variant (nearest lower range)" in out
    assert "v2.0.0: the patched Dockerfile differs from v1.19.0's in 2 lines" in out
    assert "matches its lock" in out  # v1.19.0, a pin
    assert "v1.19.0: " not in out  # a pinned tag in range needs no explanation


def test_latest_is_the_newest_release_tag_of_the_remote(
    upstream: Path, bundle: Path, tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, results = _compat(capsys, upstream, shared_cache, "--latest")
    assert code == 0
    assert [r["ref"] for r in results] == ["v2.0.0"]  # not v2.1.0-rc.0
    code, results = _compat(capsys, bundle, shared_cache, "--latest", "v1.19.0")
    assert [r["ref"] for r in results] == ["v1.19.0"]  # given twice, checked once
    assert code == 0


def test_latest_takes_a_pre_release_only_with_pre(
    bundle: Path, tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "rc-only"
    subprocess.run(["git", "clone", "--quiet", str(bundle), str(repo)], check=True, capture_output=True)
    for tag in git(repo, "tag").split():
        git(repo, "tag", "-d", tag)
    git(repo, "tag", "v1.20.0-rc.0", "main")
    git(repo, "tag", "unstable", "main")
    assert main(["compat", "--upstream", str(repo), "--cache-dir", str(shared_cache), "--latest"]) == 2
    assert "its newest pre-release is v1.20.0-rc.0: pass --pre to take it" in capsys.readouterr().err
    code, results = _compat(capsys, repo, shared_cache, "--latest", "--pre")
    assert [r["ref"] for r in results] == ["v1.20.0-rc.0"]
    assert results[0]["variant"]["name"] == "v1.18+"
    # This upstream lacks the pinned tags: nothing to compare the post-image with, and it says so.
    drift = results[0]["drift"]
    assert (drift["pin"], drift["differs"], drift["compared"]) == ("v1.19.0", None, "unavailable")
    assert "unknown ref 'v1.19.0'" in drift["note"]
    assert code == 0
    git(repo, "tag", "-d", "v1.20.0-rc.0")
    assert main(["compat", "--upstream", str(repo), "--cache-dir", str(shared_cache), "--latest", "--pre"]) == 2
    assert "has no version tag" in capsys.readouterr().err


def test_a_branch_or_commit_with_history_takes_its_newest_release_tag(
    upstream: Path, bundle: Path, tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A bundle is fetched whole, history included, as a full mirror would be.
    full = tmp_path / "full.bundle"
    git(upstream, "bundle", "create", "--quiet", str(full), "--all")
    code, results = _compat(capsys, full, shared_cache, "feature")
    assert code == 0
    [feature] = results
    assert feature["variant"]["version_tag"] == "v2.0.0"  # v2.1.0-rc.0 is a pre-release, v1.20.0 older
    assert feature["variant"]["reason"] == (
        "feature: not a release tag; the newest release tag in its fetched history is v2.0.0: "
        "outside every range; using the v1.18+ variant (nearest lower range)"
    )

    v1_3 = git(upstream, "rev-parse", "v1.3.0^{commit}")
    code, results = _compat(capsys, bundle, shared_cache, v1_3)
    [commit] = results
    assert commit["variant"]["name"] == "v0.15-v1.17"
    assert commit["variant"]["version_tag"] == "v1.3.0"
    assert commit["drift"] == {
        "pin": "v1.3.0",
        "differs": False,
        "compared": "text",
        "changed_lines": 0,
        "diff": None,
        "note": None,
    }
    assert code == 0


def test_an_upstreamed_patch_says_drop_it(
    upstream: Path, tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patch = Patch.load(patches_dir() / "patch-dockerfile-v1.18.patch")
    git(upstream, "checkout", "--quiet", "v1.19.0")
    pristine = (upstream / "Dockerfile").read_bytes()
    (upstream / "Dockerfile").write_bytes(patched_contents(patch, {"Dockerfile": pristine})["Dockerfile"])
    _commit(upstream, "upstream takes the knobs", "v1.21.0")
    code, [result] = _compat(capsys, upstream, shared_cache, "v1.21.0")
    assert code == 1
    assert (result["state"], result["ok"], result["static"], result["drift"]) == ("upstreamed", False, None, None)
    assert "drop the patch" in result["reason"]


def test_a_conflict_on_an_unpinned_ref_shows_the_hunk(
    upstream: Path, tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(upstream, "  --features docker \\\n", "  --features docker,extra \\\n")
    _commit(upstream, "a new feature flag", "v1.22.0")
    code, [result] = _compat(capsys, upstream, shared_cache, "v1.22.0")
    assert code == 1
    assert result["state"] == "conflict"
    second = result["hunks"][1]
    assert second["status"] == "conflict"
    assert second["mismatch_found"] == "    --features docker,extra \\"


def test_a_patch_that_applies_but_fails_the_static_checks_is_not_ok(
    upstream: Path, tmp_path: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The final stage goes back to per-architecture paths, outside the patch's hunks: it applies, but the
    # image would copy a binary the builder no longer makes.
    final = "nonroot\n\nCOPY --from=builder /usr/local/bin/mas-cli /usr/local/bin/mas-cli\n"
    _edit(upstream, final, "nonroot\n\nCOPY --from=builder /usr/local/bin/mas-cli-amd64 /usr/local/bin/mas-cli\n")
    _commit(upstream, "per-arch copy", "v1.23.0")
    code, [result] = _compat(capsys, upstream, shared_cache, "v1.23.0")
    assert code == 1
    assert result["state"] == "applies"
    assert result["reason"] == "applies, but the patched Dockerfile fails the static checks: move-step"
    assert {f["check"] for f in result["static"]["failed"]} == {"move-step"}


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


# -- one odd ref among several: ERROR for it, the others still checked --------------------------------


def test_a_non_utf8_upstream_dockerfile_is_an_error_for_that_ref_only(
    upstream_with_a_latin1_release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pins = tmp_path / "pins.toml"
    pins.write_text('[upstream]\nseries = "patches/series.toml"\n')
    (tmp_path / "patches").symlink_to(patches_dir())
    argv = ["--upstream", str(upstream_with_a_latin1_release), "--cache-dir", str(tmp_path / "c"), "--pins", str(pins)]
    refs = ["--ref", "v1.16.0", "--ref", "v1.17.0", "--json"]

    assert main(["compat", *argv, *refs]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    document = json.loads(captured.out)
    statuses = {(r["group"], r["name"]): r["status"] for r in document["results"]}
    assert statuses[("compat.v1.17.0", "static checks")] == "error"
    assert {s for (group, _), s in statuses.items() if group == "compat.v1.16.0"} == {"ok"}, "v1.16.0 still checked"
    by_ref = {r["ref"]: r for r in document["refs"]}
    assert by_ref["v1.17.0"]["state"] == str(State.APPLIES)
    assert "not UTF-8" in by_ref["v1.17.0"]["static"]["failed"][0]["message"]

    assert main(["check", *argv, *refs]) == 2
    document = json.loads(capsys.readouterr().out)
    errors = {(r["group"], r["name"]) for r in document["results"] if r["status"] == "error"}
    assert errors == {("static.v1.17.0", "dockerfile-text")}
    assert {r["status"] for r in document["results"] if r["group"] == "static.v1.16.0"} == {"ok"}


def test_the_latin1_fixture_patches_cleanly(upstream_with_a_latin1_release: Path, main_patch: Patch) -> None:
    """The ERROR above is about the bytes, not the patch: git apply takes the Latin-1 file as it is."""
    data = (upstream_with_a_latin1_release / DOCKERFILE).read_bytes()
    assert patched_contents(main_patch, {DOCKERFILE: data})[DOCKERFILE].endswith(b"# caf\xe9\n")


def test_a_dockerfile_nested_past_the_limit_is_an_error_for_that_ref_only(
    bundle_cache: UpstreamCache, make_repo: MakeRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hostile tag whose global ARG nests `${A:-...}` 3,000 deep: an `error` for it, never a RecursionError that
    ends the run for every ref."""
    deep = "x"
    for _ in range(3000):
        deep = "${A:-" + deep + "}"
    older = bundle_cache.read_blob(bundle_cache.resolve("v1.16.0").dockerfile_blob)
    newer = bundle_cache.read_blob(bundle_cache.resolve("v1.17.0").dockerfile_blob)
    repo = make_repo({DOCKERFILE: older}, name="upstream")
    git(repo, "tag", "v1.16.0")
    (repo / DOCKERFILE).write_bytes(f"ARG DEEP={deep}\n".encode() + newer)
    _commit(repo, "a hostile ARG", "v1.17.0")
    pins = tmp_path / "pins.toml"
    pins.write_text('[upstream]\nseries = "patches/series.toml"\n')
    (tmp_path / "patches").symlink_to(patches_dir())
    argv = ["--upstream", str(repo), "--cache-dir", str(tmp_path / "c"), "--pins", str(pins)]
    refs = ["--ref", "v1.16.0", "--ref", "v1.17.0", "--json"]

    assert main(["compat", *argv, *refs]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err
    document = json.loads(captured.out)
    statuses = {(r["group"], r["name"]): r["status"] for r in document["results"]}
    assert statuses[("compat.v1.17.0", "static checks")] == "error"
    assert {s for (group, _), s in statuses.items() if group == "compat.v1.16.0"} == {"ok"}, "v1.16.0 still checked"
    failed = {r["ref"]: r for r in document["refs"]}["v1.17.0"]["static"]["failed"]
    assert [f["check"] for f in failed] == ["dockerfile-limits"]
    assert "nests ${...} more than 100 deep" in failed[0]["message"]

    assert main(["check", *argv, *refs]) == 2
    document = json.loads(capsys.readouterr().out)
    errors = {(r["group"], r["name"]) for r in document["results"] if r["status"] == "error"}
    assert errors == {("static.v1.17.0", "dockerfile-limits")}
    assert {r["status"] for r in document["results"] if r["group"] == "static.v1.16.0"} == {"ok"}


def test_latest_is_a_ref_named_like_any_other(
    upstream: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, results = _compat(capsys, upstream, shared_cache, "v1.19.0", "latest")
    assert (code, [r["ref"] for r in results]) == (0, ["v1.19.0", "v2.0.0"])
    code, results = _compat(capsys, upstream, shared_cache, "--ref", "latest", "--pre")
    assert (code, [r["ref"] for r in results]) == (0, ["v2.1.0-rc.0"])
    assert main(["compat", "--upstream", str(upstream), "--cache-dir", str(shared_cache), "latest"]) == 0
    assert f"latest is v2.0.0 (the newest release tag of {upstream})" in capsys.readouterr().out


def test_latest_is_read_from_the_one_listing_of_the_run(
    upstream: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    listings: list[tuple[str, ...]] = []
    real_git = proc.git

    def spying_git(*args: str, **kwargs: Any) -> str:  # a spy: records each ls-remote, runs git as it is
        if args and args[0] == "ls-remote":
            listings.append(args)
        return real_git(*args, **kwargs)

    monkeypatch.setattr(cache_module, "git", spying_git)
    code, results = _compat(capsys, upstream, shared_cache, "latest", "v1.19.0", "--latest")
    assert (code, [r["ref"] for r in results]) == (0, ["v2.0.0", "v1.19.0"])
    assert len(listings) == 1


def test_refresh_onto_latest_names_the_tag(
    bundle: Path, shared_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "refreshed.patch"
    patch = patches_dir() / "patch-dockerfile-v1.18.patch"
    argv = ["refresh", "--upstream", str(bundle), "--cache-dir", str(shared_cache), "--patch", str(patch)]
    assert main([*argv, "--ref", "latest", "--output", str(out), "--date", "2026-01-01"]) == 0
    assert "latest is v1.19.0" in capsys.readouterr().out
    assert out.is_file()


def test_check_takes_latest_too(upstream: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", "--upstream", str(upstream), "--cache-dir", str(shared_cache), "--ref", "latest", "--json"]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert ([r["ref"] for r in document["refs"]], document["latest"]) == (["v2.0.0"], "v2.0.0")
