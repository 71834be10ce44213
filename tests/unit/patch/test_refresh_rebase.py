"""refresh: the patch moved onto other upstream refs by three-way merge, reported hunk by hunk; refresh onto a
Dockerfile that is not UTF-8."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.config.pins import Pin, Pins
from harness.errors import BadInput, PatchError, UpstreamError
from harness.patch.apply import State, evaluate, patched_contents
from harness.patch.patchfile import Patch, git_blob_id
from harness.patch.refresh_rebase import Refresh, RefreshTerms, Settlement, bump_last_update, rebase_patch, refresh_onto
from harness.resources import patches_dir
from harness.upstream.cache import DOCKERFILE, UpstreamCache
from harness.upstream.source import UpstreamSource
from tests.support import MakeRepo, git

PREIMAGE_BLOB = "ba2ed16c8401fffb9bab73e03704e95ad5c87e6a"  # v1.11.0 - v1.17.0


TODAY = date(2031, 2, 3)


@pytest.fixture
def main_patch_path() -> Path:
    return patches_dir() / "patch-dockerfile.patch"


def _dockerfile(cache: UpstreamCache, ref: str) -> bytes:
    return cache.read_blob(cache.resolve(ref).dockerfile_blob)


def _rebase(patch: Patch, base: bytes, target: bytes, label: str = "next") -> Refresh:
    return rebase_patch(
        patch,
        bases={DOCKERFILE: base},
        targets={DOCKERFILE: target},
        target_label=label,
        terms=RefreshTerms(today=TODAY),
    )


def _body(data: bytes) -> bytes:
    return data[data.index(b"diff --git ") :]


def _header(data: bytes) -> bytes:
    return data[: data.index(b"diff --git ")]


def _applies_pins(pins: Pins) -> list[Pin]:
    """The pins the main patch (the v0.15.0 - v1.17.0 variant) is for."""
    main = pins.series.choose("v1.7.0").variant.patch.resolve()
    return [pin for pin in pins.pins if pin.expected == "applies" and pins.patch_path(pin.patch).resolve() == main]


# -- refresh on the bundled releases -------------------------------------------------------------


def test_refresh_onto_every_tag_it_applies_to_gives_an_equivalent_patch(
    bundle_cache: UpstreamCache, pins: Pins, main_patch: Patch
) -> None:
    pinned = _applies_pins(pins)
    assert len(pinned) == 26
    for pin in pinned:
        resolved = bundle_cache.resolve(pin.tag)
        result = refresh_onto(bundle_cache, main_patch, resolved, pins=pins, terms=RefreshTerms(today=TODAY))
        assert result.status == "clean", pin.tag
        assert [h.status for h in result.hunks] == ["clean", "clean"], pin.tag
        assert result.candidate is not None
        refreshed = Patch.parse(result.candidate, path=Path("refreshed.patch"))
        original = bundle_cache.read_blob(pin.dockerfile_blob)
        patched = patched_contents(refreshed, {DOCKERFILE: original})[DOCKERFILE]
        # Equivalent: the same bytes the pinned post-image lock names, from a diff against this tag's own blob.
        assert git_blob_id(patched) == pin.patched_blob, pin.tag
        assert f"index {pin.dockerfile_blob}..{pin.patched_blob} 100644\n".encode() in result.candidate
        # Where the old patch applied with an offset, the new one applies exactly where its headers say.
        assert [h.status for h in evaluate({DOCKERFILE: original}, refreshed).hunks] == ["exact", "exact"]
        assert [h.new_start for h in result.hunks] == [
            h.found_at for h in evaluate({DOCKERFILE: original}, main_patch).hunks
        ]


def test_refresh_onto_its_own_preimage_changes_only_last_update(
    bundle_cache: UpstreamCache, pins: Pins, main_patch_path: Path
) -> None:
    patch = Patch.load(main_patch_path)
    result = refresh_onto(
        bundle_cache, patch, bundle_cache.resolve("v1.17.0"), pins=pins, terms=RefreshTerms(today=TODAY)
    )
    assert result.candidate is not None
    assert _body(result.candidate) == _body(patch.data)
    assert _header(result.candidate) == _header(patch.data).replace(
        b"Last-Update: 2026-11-24", b"Last-Update: 2031-02-03"
    )
    assert [h.offset for h in result.hunks] == [0, 0]
    assert [h.new_header for h in result.hunks] == [h.header for h in result.hunks]


def test_refresh_onto_v1_18_0_merges_hunk_1_and_names_the_three_regions_of_hunk_2(
    bundle_cache: UpstreamCache, pins: Pins, main_patch: Patch
) -> None:
    result = refresh_onto(
        bundle_cache, main_patch, bundle_cache.resolve("v1.18.0"), pins=pins, terms=RefreshTerms(today=TODAY)
    )
    assert result.status == "conflict"
    assert result.candidate is None
    first, second = result.hunks
    # The rustup step moved down by the 11 lines v1.18.0 added to the frontend stage.
    assert (first.status, first.new_start, first.offset) == ("clean", 87, 11)
    assert second.status == "conflict"
    regions = [(c.new_line, c.kind, c.upstream_lines[0]) for c in second.conflicts]
    assert regions == [
        (133, "adjacent", "ARG TARGETARCH"),  # upstream's new ARG right above the comment the patch rewrites
        (139, "same-place", '  RUST_TARGET=$(case "${TARGETARCH}" in \\'),  # both insert the target choice there
        (150, "overlap", '    --target "${RUST_TARGET}" \\'),  # both rewrite --target and the mv step
    ]
    assert second.conflicts[2].upstream_lines[1].endswith("/usr/local/bin/mas-cli")
    assert any("mas-cli-arm64" in line for line in second.conflicts[2].patch_lines)
    [merged] = result.files
    assert merged.conflicts == 3
    assert b"rustup target add  \\\n" not in merged.merged  # hunk 1 is in the merge all the same
    assert "#2 (3 region(s))" in result.summary()


# -- synthetic upstream changes ------------------------------------------------------------------


def test_a_clean_upstream_change_next_to_a_hunk_merges_with_shifted_lines(
    bundle_cache: UpstreamCache, main_patch: Patch
) -> None:
    base = _dockerfile(bundle_cache, "v1.17.0")
    # Three lines more at the top, and a context line of hunk #2 changed: git apply refuses this.
    target = b"# one\n# two\n# three\n" + base.replace(
        b"ARG VERGEN_GIT_DESCRIBE\n", b"ARG VERGEN_GIT_DESCRIBE=unknown\n", 1
    )
    assert evaluate({DOCKERFILE: target}, main_patch).state == State.CONFLICT
    result = _rebase(main_patch, base, target)
    assert result.status == "clean"
    assert [(h.status, h.new_start, h.offset) for h in result.hunks] == [("clean", 79, 3), ("clean", 122, 3)]
    assert [h.new_header for h in result.hunks] == [
        "@@ -79,13 +79,9 @@ RUN --network=default \\",
        "@@ -122,20 +118,62 @@ ENV SQLX_OFFLINE=true",
    ]
    assert result.candidate is not None
    patched = patched_contents(Patch.parse(result.candidate, path=Path("x")), {DOCKERFILE: target})[DOCKERFILE]
    assert b"ARG VERGEN_GIT_DESCRIBE=unknown\n" in patched
    assert b"ARG MAS_BUILD_TARGETS=\n" in patched
    assert patched.startswith(b"# one\n")


def test_an_upstream_change_to_lines_the_patch_changes_is_a_conflict(
    bundle_cache: UpstreamCache, main_patch: Patch
) -> None:
    base = _dockerfile(bundle_cache, "v1.17.0")
    target = base.replace(b"--target aarch64-unknown-linux-gnu \\\n", b"--target aarch64-unknown-linux-musl \\\n")
    result = _rebase(main_patch, base, target)
    assert result.status == "conflict"
    assert [h.status for h in result.hunks] == ["clean", "conflict"]
    [region] = result.hunks[1].conflicts
    assert region.kind == "overlap"
    assert "    --target aarch64-unknown-linux-musl \\" in region.upstream_lines
    assert "    --target aarch64-unknown-linux-gnu \\" in region.base_lines
    assert (region.new_line, region.region) == (132, "132-135")  # the whole run the patch rewrites


def test_a_ref_that_already_has_the_change_is_upstreamed(bundle_cache: UpstreamCache, main_patch: Patch) -> None:
    base = _dockerfile(bundle_cache, "v1.17.0")
    target = patched_contents(main_patch, {DOCKERFILE: base})[DOCKERFILE]
    result = _rebase(main_patch, base, target)
    assert result.status == "upstreamed"
    assert result.candidate is None
    assert {h.status for h in result.hunks} == {"upstream"}


def test_a_patch_without_an_index_line_is_refused(
    bundle_cache: UpstreamCache, tmp_path: Path, main_patch_path: Path
) -> None:
    data = re.sub(rb"(?m)^index .*\n", b"", main_patch_path.read_bytes())
    (tmp_path / "p.patch").write_bytes(data)
    base = _dockerfile(bundle_cache, "v1.17.0")
    with pytest.raises(PatchError, match="no `index` line"):
        _rebase(Patch.load(tmp_path / "p.patch"), base, base)


def test_last_update_is_bumped_or_added_before_the_separator() -> None:
    assert bump_last_update(b"Description: x\nLast-Update: 2020-01-01\n---\n", TODAY) == (
        b"Description: x\nLast-Update: 2031-02-03\n---\n"
    )
    assert bump_last_update(b"Description: x\nAuthor: y\n---\n", TODAY) == (
        b"Description: x\nAuthor: y\nLast-Update: 2031-02-03\n---\n"
    )
    assert bump_last_update(b"", TODAY) == b""


# -- the pre-image blob, fetched when the cache lacks it -----------------------------------------


def _synthetic_upstream(make_repo: MakeRepo, v1_17: bytes, next_dockerfile: bytes) -> Path:
    repo = make_repo({DOCKERFILE: v1_17}, name="upstream")
    git(repo, "config", "uploadpack.allowFilter", "true")
    git(repo, "tag", "v1.17.0")
    (repo / DOCKERFILE).write_bytes(next_dockerfile)
    git(repo, "commit", "--quiet", "-am", "next")
    git(repo, "tag", "next")
    return repo


def test_the_preimage_is_fetched_through_its_pin_when_the_cache_lacks_it(
    bundle_cache: UpstreamCache, make_repo: MakeRepo, tmp_path: Path, pins: Pins, main_patch: Patch
) -> None:
    v1_17 = _dockerfile(bundle_cache, "v1.17.0")
    repo = _synthetic_upstream(make_repo, v1_17, b"# moved\n" + v1_17)
    cache = UpstreamCache(tmp_path / "cache", UpstreamSource.parse(str(repo)))
    resolved = cache.resolve("next")  # shallow and blobless: the pre-image is not in the cache yet
    assert cache.local_blob(PREIMAGE_BLOB) is None
    result = refresh_onto(cache, main_patch, resolved, pins=pins, terms=RefreshTerms(today=TODAY))
    assert result.status == "clean"
    assert cache.local_blob(PREIMAGE_BLOB[:12]) == PREIMAGE_BLOB


def test_a_preimage_found_nowhere_is_an_error_naming_the_blob(
    bundle_cache: UpstreamCache, make_repo: MakeRepo, tmp_path: Path, pins: Pins, main_patch: Patch
) -> None:
    v1_17 = _dockerfile(bundle_cache, "v1.17.0")
    repo = _synthetic_upstream(make_repo, v1_17, b"# moved\n" + v1_17)
    cache = UpstreamCache(tmp_path / "cache", UpstreamSource.parse(str(repo)))
    unpinned = dataclasses.replace(pins, pins=())
    with pytest.raises(UpstreamError, match=PREIMAGE_BLOB):
        refresh_onto(cache, main_patch, cache.resolve("next"), pins=unpinned, terms=RefreshTerms(today=TODAY))


def test_resolution_equal_to_the_ref_is_refused(bundle_cache: UpstreamCache, main_patch: Patch) -> None:
    base = _dockerfile(bundle_cache, "v1.17.0")
    with pytest.raises(BadInput, match="no patch to make"):
        rebase_patch(
            main_patch,
            bases={DOCKERFILE: base},
            targets={DOCKERFILE: base},
            target_label="v1.17.0",
            terms=RefreshTerms(today=TODAY, settlement=Settlement(resolution={DOCKERFILE: base})),
        )


# -- the command line ----------------------------------------------------------------------------


def _refresh(bundle: Path, cache: Path, patch: Path, ref: str, output: Path, *extra: str) -> list[str]:
    return [
        "refresh",
        "--upstream",
        str(bundle),
        "--cache-dir",
        str(cache),
        "--patch",
        str(patch),
        "--ref",
        ref,
        "--output",
        str(output),
        "--date",
        TODAY.isoformat(),
        *extra,
    ]


@pytest.fixture
def input_patch(tmp_path: Path, main_patch_path: Path) -> Path:
    """A copy of the main patch, so that 'never touched' is checked on a file the test owns."""
    path = tmp_path / "in.patch"
    path.write_bytes(main_patch_path.read_bytes())
    return path


def _fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_cli_refresh_onto_a_release_writes_the_patch_and_runs_the_static_checks(
    bundle: Path, tmp_path: Path, shared_cache: Path, input_patch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _fingerprint(input_patch)
    output = tmp_path / "out.patch"
    assert main([*_refresh(bundle, shared_cache, input_patch, "v1.7.0", output), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["refresh_status"], report["ok"], report["output"]) == ("clean", True, str(output))
    assert [(h["status"], h["offset"]) for h in report["hunks"]] == [("clean", -2), ("clean", -2)]
    assert report["static"] and all(f["ok"] for f in report["static"])
    assert {f["check"] for f in report["static"]} >= {"move-step", "shellcheck", "hadolint-new-findings"}
    assert report["files"][0]["refreshed_blob"] == "6d35341d457386b5ddff9a2c53d2b0939df98d33"  # the v1.7.0 lock
    assert _fingerprint(input_patch) == before
    written = output.read_bytes()
    # The DEP-3 header is kept as it was, but for the date.
    assert _header(written) == _header(before[0]).replace(b"Last-Update: 2026-11-24", b"Last-Update: 2031-02-03")
    assert b"Last-Update: 2031-02-03\n" in written


def test_cli_refuses_to_overwrite_the_output_without_force(
    bundle: Path, tmp_path: Path, shared_cache: Path, input_patch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.patch"
    output.write_bytes(b"someone's work\n")
    before = _fingerprint(output)
    assert main(_refresh(bundle, shared_cache, input_patch, "v1.17.0", output)) == 2
    assert "exists" in capsys.readouterr().err
    assert _fingerprint(output) == before
    assert main([*_refresh(bundle, shared_cache, input_patch, "v1.17.0", output), "--force"]) == 0
    assert _body(output.read_bytes()) == _body(input_patch.read_bytes())


def test_cli_never_writes_its_input_patch_even_with_force(
    bundle: Path, tmp_path: Path, shared_cache: Path, input_patch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _fingerprint(input_patch)
    assert main([*_refresh(bundle, shared_cache, input_patch, "v1.7.0", input_patch), "--force"]) == 2
    assert "never writes its inputs" in capsys.readouterr().err
    assert _fingerprint(input_patch) == before


def _take_the_patch_side(conflicted: str) -> str:
    """What a human choosing the patch's side of every region would save."""
    kept, section = [], "out"
    for line in conflicted.splitlines(keepends=True):
        if line.startswith("<<<<<<< "):
            section = "upstream"
        elif line.startswith("||||||| "):
            section = "base"
        elif line.rstrip("\n") == "=======":
            section = "patch"
        elif line.startswith(">>>>>>> "):
            section = "out"
        elif section in ("out", "patch"):
            kept.append(line)
    return "".join(kept)


def test_cli_refresh_onto_v1_18_0_writes_nothing_then_resolves_by_hand(
    bundle: Path, tmp_path: Path, shared_cache: Path, input_patch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _fingerprint(input_patch)
    output = tmp_path / "out.patch"
    args = _refresh(bundle, shared_cache, input_patch, "v1.18.0", output)
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "needs a human" in captured.out
    assert "ARG TARGETARCH" in captured.out  # the upstream side of region 1, with its line number
    summary = captured.out.strip().splitlines()[-1]
    assert summary == "1 of 2 hunks of in.patch need a human on v1.18.0: #2 (3 region(s)); nothing written"
    assert not output.exists()

    conflicts = tmp_path / "Dockerfile.conflicts"
    assert main([*args, "--conflicts", str(conflicts)]) == 1
    capsys.readouterr()
    assert not output.exists()
    conflicted = conflicts.read_text()
    assert conflicted.count("<<<<<<< v1.18.0") == 3
    assert conflicted.count(">>>>>>> in.patch") == 3

    assert main([*args, "--resolved", str(conflicts)]) == 2
    assert "conflict marker at line" in capsys.readouterr().err
    resolved = tmp_path / "Dockerfile.resolved"
    resolved.write_text(_take_the_patch_side(conflicted))
    # The patch's side applies to v1.18.0, but v1.18.0's final stages copy /usr/local/bin/mas-cli,
    # which the patch's move step no longer makes: the static checks say so, and the patch is written.
    assert main([*args, "--resolved", str(resolved), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["refresh_status"] == "resolved"
    # v1.18.0's final stages make it the single-target shape: the per-arch moves and the choice of
    # any target are what a human must still change (the v1.18+ variant in patches/ is that change).
    failed = {(f["check"], f["message"].split(" (")[0]) for f in report["static"] if not f["ok"]}
    assert {check for check, _ in failed} == {"move-step", "targets-validated"}
    assert ("move-step", "COPY --from=builder /usr/local/bin/mas-cli") in failed
    refreshed = Patch.load(output)
    v1_18 = UpstreamCache(tmp_path / "c", UpstreamSource.parse(str(bundle)))
    original = _dockerfile(v1_18, "v1.18.0")
    assert evaluate({DOCKERFILE: original}, refreshed).state == State.APPLIES
    assert patched_contents(refreshed, {DOCKERFILE: original})[DOCKERFILE] == resolved.read_bytes()
    assert _fingerprint(input_patch) == before


def test_cli_real_conflict_on_a_synthetic_ref_exits_1_and_writes_nothing(
    bundle_cache: UpstreamCache,
    make_repo: MakeRepo,
    tmp_path: Path,
    input_patch: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v1_17 = _dockerfile(bundle_cache, "v1.17.0")
    drifted = v1_17.replace(b"--target aarch64-unknown-linux-gnu \\\n", b"--target aarch64-unknown-linux-musl \\\n")
    repo = _synthetic_upstream(make_repo, v1_17, drifted)
    output = tmp_path / "out.patch"
    before = _fingerprint(input_patch)
    assert main([*_refresh(repo, tmp_path / "c", input_patch, "next", output), "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert [h["status"] for h in report["hunks"]] == ["clean", "conflict"]
    [region] = [c for c in report["hunks"][1]["changes"] if c["status"] == "conflict"]
    assert (region["kind"], region["new_line"]) == ("overlap", 132)
    assert report["output"] is None
    [verdict] = [r for r in report["results"] if r["name"] == "refresh"]
    assert verdict["status"] == "failed"
    assert "hunks of in.patch need a human on next: #2" in verdict["reason"]
    assert not output.exists()
    assert _fingerprint(input_patch) == before


def test_cli_take_patch_side_gives_a_patch_that_applies_to_v1_18_0_and_says_what_to_review(
    bundle: Path, tmp_path: Path, shared_cache: Path, input_patch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.patch"
    args = _refresh(bundle, shared_cache, input_patch, "v1.18.0", output)
    assert main([*args, "--take-patch-side", "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["refresh_status"] == "patch-side"
    assert [h["status"] for h in report["hunks"]] == ["clean", "conflict"]
    failed = {f["check"] for f in report["static"] if not f["ok"]}
    assert failed == {"move-step", "targets-validated"}, "v1.18.0's final stages copy /usr/local/bin/mas-cli only"
    [summary] = [r["reason"] for r in report["results"] if r["name"] == "refresh"]
    assert "the patch's side was taken in #2 (3 region(s))" in summary
    assert f"wrote {output}" in summary and "move-step" in summary
    refreshed = Patch.load(output)
    assert b"Last-Update: " in refreshed.data
    v1_18 = _dockerfile(UpstreamCache(tmp_path / "c", UpstreamSource.parse(str(bundle))), "v1.18.0")
    assert evaluate({DOCKERFILE: v1_18}, refreshed).state == State.APPLIES
    patched = patched_contents(refreshed, {DOCKERFILE: v1_18})[DOCKERFILE]
    assert b"<<<<<<<" not in patched and b"ARG CARGO_BUILD_JOBS=2" in patched
    assert main([*args, "--take-patch-side", "--resolved", str(output), "--force"]) == 2


def test_refresh_onto_a_non_utf8_dockerfile_is_one_line_and_writes_nothing(
    upstream_with_a_latin1_release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The merge takes the bytes; the refreshed patch cannot be checked, so it is not written."""
    pins = tmp_path / "pins.toml"
    pins.write_text('[upstream]\nseries = "patches/series.toml"\n')
    (tmp_path / "patches").symlink_to(patches_dir())
    output = tmp_path / "refreshed.patch"
    argv = ["refresh", "--upstream", str(upstream_with_a_latin1_release), "--cache-dir", str(tmp_path / "c")]
    argv += ["--pins", str(pins), "--patch", str(patches_dir() / "patch-dockerfile.patch")]
    # The patch's pre-image is v1.16.0's Dockerfile: in the cache once that release was looked at.
    assert main(["compat", *argv[1:5], "--pins", str(pins), "--ref", "v1.16.0"]) == 0
    capsys.readouterr()

    assert main([*argv, "--ref", "v1.17.0", "--output", str(output)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("mas-harness: error: v1.17.0: the Dockerfile is not UTF-8 text (byte ")
    assert lines[0].endswith("; nothing written")
    assert not output.exists()
