"""Superproject mode on the users' layout: MAS as a real git submodule, the patch beside it, pyproject config."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from harness.cli.main import main
from harness.config.pins import Pins
from harness.config.superproject import SuperprojectFlags, resolve_superproject
from harness.errors import BadInput
from harness.patch.apply import patched_contents
from harness.patch.patchfile import Patch
from harness.resources import patches_dir, pins_file
from tests.support import count_parses, git

SUBMODULE = "docker/chat/mas/repo"
PATCH = "docker/chat/mas/patches/patch-dockerfile.patch"
PINNED_TAG = "v1.17.0"
CONFIG = f'[project]\nname = "chat"\n\n[tool.mas-harness]\nsubmodule = "{SUBMODULE}"\npatch = "{PATCH}"\n'


def _commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", message)


@pytest.fixture(scope="module")
def superproject_template(upstream_clone: Path, tmp_path_factory: pytest.TempPathFactory, main_patch: Patch) -> Path:
    """The users' repository: the submodule at a pinned tag, the patch beside it, [tool.mas-harness] in pyproject."""
    root = tmp_path_factory.mktemp("template") / "chat"
    root.mkdir()
    git(root, "init", "--quiet")
    git(root, "config", "user.email", "test@localhost")
    git(root, "config", "user.name", "test")
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "--quiet", str(upstream_clone), SUBMODULE)
    git(root / SUBMODULE, "checkout", "--quiet", PINNED_TAG)
    (root / PATCH).parent.mkdir(parents=True)
    (root / PATCH).write_bytes(main_patch.data)
    (root / "pyproject.toml").write_text(CONFIG)
    _commit(root, f"MAS submodule at {PINNED_TAG} with its patch")
    return root


@pytest.fixture
def superproject(superproject_template: Path, tmp_path: Path) -> Path:
    """A copy of the template for each test, which may change it: git links a submodule to its superproject by
    relative paths, so the copy is a repository of its own (its remote is the module's upstream clone)."""
    root = tmp_path / "chat"
    shutil.copytree(superproject_template, root, symlinks=True)
    return root


def _verify(root: Path, cache: Path, *extra: str) -> list[str]:
    return ["verify", "--superproject", str(root), "--cache-dir", str(cache), *extra]


def _report(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The JSON report of verify or compat in a superproject, its parts as the tests read them."""
    document = json.loads(capsys.readouterr().out)
    assert (document["schema_version"], document["mode"]) == (1, "superproject")
    [compat] = document["refs"]
    return {**document["superproject"], "compat": compat, "static": document["static"], "document": document}


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The whole of stderr, which must be one error line."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("mas-harness: error: ")
    return err[0]


def test_verify_checks_the_recorded_commit_from_the_submodules_own_repository(
    superproject: Path, shared_cache: Path, pins: Pins, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_verify(superproject, shared_cache, "--json")) == 0
    report = _report(capsys)
    recorded = git(superproject, "rev-parse", f"HEAD:{SUBMODULE}")
    assert report["recorded_commit"] == recorded == git(superproject / SUBMODULE, "rev-parse", f"{PINNED_TAG}^{{}}")
    assert report["tag"] == PINNED_TAG
    assert report["source"] == git(superproject / SUBMODULE, "rev-parse", "--absolute-git-dir")
    pin = pins.get(PINNED_TAG)
    assert pin is not None
    compat = report["compat"]
    assert compat["state"] == "applies"
    assert (compat["upstream_commit"], compat["dockerfile_blob"]) == (pin.upstream_commit, pin.dockerfile_blob)
    assert compat["patched_blob"] == pin.patched_blob
    assert compat["patch"] == PATCH
    assert [h["status"] for h in compat["hunks"]] == ["exact", "exact"]
    assert report["static"]["ok"]
    assert {"knobs-declared", "cargo-env", "move-step", "shellcheck"} <= {
        f["check"] for f in report["static"]["findings"]
    }


def test_verify_offline_answers_from_the_cache_and_says_so(
    superproject: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert main(_verify(superproject, cache, "--offline")) == 2, "nothing cached yet"
    assert "--offline fetches nothing" in _error_line(capsys)
    assert main(_verify(superproject, cache, "--json")) == 0
    online = _report(capsys)
    assert main(_verify(superproject, cache, "--json", "--offline")) == 0
    offline = _report(capsys)
    assert (online["document"]["offline"], offline["document"]["offline"]) == (False, True)
    assert offline["compat"]["upstream_commit"] == online["compat"]["upstream_commit"]
    assert offline["document"]["verdicts"]["reused"] == 1, "the static checks were read back"
    assert main(_verify(superproject, cache, "--offline")) == 0
    assert "offline: refs were answered from the cache alone" in capsys.readouterr().out


def test_verify_follows_the_gitlink_in_the_index_not_the_checkout(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    submodule = superproject / SUBMODULE
    git(submodule, "checkout", "--quiet", "v1.18.0")
    # Checked out but not staged: the superproject still records v1.17.0.
    assert main(_verify(superproject, shared_cache, "--json")) == 0
    report = _report(capsys)
    assert (report["tag"], report["compat"]["state"]) == (PINNED_TAG, "applies")
    assert report["checked_out"] != report["recorded_commit"]

    git(superproject, "add", SUBMODULE)  # a staged bump is what the next commit records
    assert main(_verify(superproject, shared_cache, "--json")) == 1
    report = _report(capsys)
    assert report["tag"] == "v1.18.0"
    assert report["committed_commit"] != report["recorded_commit"]
    conflict = report["compat"]
    assert conflict["state"] == "conflict"
    assert [h["status"] for h in conflict["hunks"]] == ["offset", "conflict"]
    assert conflict["hunks"][1]["mismatch_line"] == 133
    assert [f["check"] for f in report["static"]["findings"]] == ["patch-applies"]


def _untouched_state(root: Path) -> dict[str, object]:
    submodule = root / SUBMODULE
    git_dir = Path(git(submodule, "rev-parse", "--absolute-git-dir"))
    return {
        "index": (root / ".git" / "index").read_bytes(),
        "submodule index": (git_dir / "index").read_bytes(),
        "submodule HEAD": git(submodule, "rev-parse", "HEAD"),
        "submodule refs": git(submodule, "for-each-ref"),
        "Dockerfile": (submodule / "Dockerfile").read_bytes(),
        "files": sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".git" not in p.parts),
    }


def test_compat_bump_to_checks_a_ref_without_touching_the_superproject(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status_before = git(superproject, "status", "--porcelain")
    assert status_before == ""
    before = _untouched_state(superproject)
    cache = shared_cache
    patch = str(superproject / PATCH)  # the main patch, named explicitly: a v1.18+ variant may be configured later

    assert main(["compat", "--superproject", str(superproject), "--cache-dir", str(cache), "--bump-to", "v1.17.0",
                 "--patch", patch, "--json"]) == 0  # fmt: skip
    fits = _report(capsys)
    assert (fits["ref"], fits["compat"]["state"], fits["static"]) == ("v1.17.0", "applies", None)

    assert main(["compat", "--superproject", str(superproject), "--cache-dir", str(cache), "--bump-to", "v1.18.0",
                 "--patch", patch]) == 1  # fmt: skip
    out = capsys.readouterr().out
    assert "conflict" in out
    assert "hunk #2" in out
    assert "line 133 is 'ARG TARGETARCH'" in out

    assert _untouched_state(superproject) == before
    assert git(superproject, "status", "--porcelain") == status_before
    assert not (superproject / SUBMODULE / "Dockerfile.orig").exists()


def test_bump_to_a_ref_the_submodule_knows_only_by_commit_id(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = git(superproject / SUBMODULE, "rev-parse", "--short", "v1.11.0^{}")
    args = ["compat", "--superproject", str(superproject), "--cache-dir", str(shared_cache), "--json"]
    assert main([*args, "--bump-to", short]) == 0
    report = _report(capsys)
    assert (report["ref"], report["tag"], report["compat"]["state"]) == (short, "v1.11.0", "applies")
    assert main([*args, "--bump-to", "v9.9.9"]) == 2
    assert "v9.9.9" in _error_line(capsys)


def test_apply_in_place_twice_then_the_users_snippet_agrees(
    superproject: Path, main_patch: Patch, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerfile = superproject / SUBMODULE / "Dockerfile"
    pristine = dockerfile.read_bytes()
    gitlink = git(superproject, "ls-files", "--stage", SUBMODULE)
    monkeypatch.chdir(superproject / "docker")  # discovered from a subdirectory, as the users run it

    assert main(["apply"]) == 0
    assert "applied patch-dockerfile.patch" in capsys.readouterr().out
    patched = dockerfile.read_bytes()
    assert patched == patched_contents(main_patch, {"Dockerfile": pristine})["Dockerfile"]
    written = dockerfile.stat().st_mtime_ns

    assert main(["apply"]) == 0
    assert "already applied" in capsys.readouterr().out
    assert dockerfile.read_bytes() == patched
    assert dockerfile.stat().st_mtime_ns == written, "the second apply writes nothing"
    # The users' reverse check now says "already applied", so their snippet and the harness agree.
    git(superproject / SUBMODULE, "apply", "--reverse", "--check", str(superproject / PATCH))
    assert git(superproject, "ls-files", "--stage", SUBMODULE) == gitlink

    assert main(["revert"]) == 0
    assert dockerfile.read_bytes() == pristine


SUPERPROJECT_COMMANDS = {
    "status": (["status"], 0),
    "apply": (["apply"], 0),
    "revert": (["revert"], 0),
    "compat-bump-to": (["compat", "--bump-to", "v1.18.0", "--cache-dir"], 1),
    "verify": (["verify", "--cache-dir"], 0),
}


@pytest.mark.parametrize("case", SUPERPROJECT_COMMANDS.values(), ids=SUPERPROJECT_COMMANDS.keys())
def test_every_superproject_command_writes_the_ci_reports(
    case: tuple[list[str], int], superproject: Path, shared_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv, code = case
    step = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    monkeypatch.chdir(superproject)
    reports = {
        flag: tmp_path / f"report.{ext}"
        for flag, ext in (("--junit", "xml"), ("--markdown", "md"), ("--output", "json"))
    }
    sinks = [arg for flag, path in reports.items() for arg in (flag, str(path))]
    cache = [str(shared_cache)] if argv[-1] == "--cache-dir" else []

    assert main([*argv, *cache, *sinks]) == code
    document = json.loads(reports["--output"].read_text())
    assert (document["schema_version"], document["command"], document["ok"]) == (1, argv[0], code == 0)
    cases = ElementTree.fromstring(reports["--junit"].read_bytes()).findall("./testsuite/testcase")
    assert len(cases) == len(document["results"]) > 0
    assert step.read_text() == reports["--markdown"].read_text() + "\n"


def test_apply_refuses_a_dirty_submodule_naming_the_hunk_and_line(
    superproject: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerfile = superproject / SUBMODULE / "Dockerfile"
    lines = dockerfile.read_bytes().splitlines(keepends=True)
    assert lines[121] == b"# Network access: cargo auditable needs it\n"
    lines[121] = b"# a local edit where the patch expects upstream\n"
    dirty = b"".join(lines)
    dockerfile.write_bytes(dirty)

    assert main(["apply", "--superproject", str(superproject)]) == 1
    out = capsys.readouterr().out
    assert "hunk #2" in out
    assert "line 122 is '# a local edit where the patch expects upstream'" in out
    assert dockerfile.read_bytes() == dirty


def test_apply_refuses_a_submodule_checked_out_off_its_recorded_commit(
    superproject: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # v1.16.0 has the same Dockerfile as v1.17.0, so only the commit check can refuse this.
    git(superproject / SUBMODULE, "checkout", "--quiet", "v1.16.0")
    pristine = (superproject / SUBMODULE / "Dockerfile").read_bytes()
    assert main(["apply", "--superproject", str(superproject)]) == 1
    assert "the superproject records" in _error_line(capsys)
    assert (superproject / SUBMODULE / "Dockerfile").read_bytes() == pristine
    # The explicit escape hatch patches whatever is checked out.
    assert main(["apply", "--checkout", str(superproject / SUBMODULE), "--patch", str(superproject / PATCH)]) == 0


def test_flags_override_the_pyproject_table(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (superproject / "pyproject.toml").write_text(
        '[tool.mas-harness]\nsubmodule = "docker/chat/mas/elsewhere"\npatch = "no-such.patch"\n'
    )
    assert main(_verify(superproject, shared_cache)) == 2
    assert "elsewhere is not a submodule" in _error_line(capsys)

    flags = ["--submodule", str(superproject / SUBMODULE), "--patch", str(superproject / PATCH), "--json"]
    assert main([*_verify(superproject, shared_cache), *flags]) == 0
    report = _report(capsys)
    assert (report["submodule"], report["compat"]["patch"]) == (SUBMODULE, PATCH)


def test_flags_alone_make_a_superproject_of_the_current_directory(
    superproject: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (superproject / "pyproject.toml").unlink()
    monkeypatch.chdir(superproject)
    assert main(["compat", "--submodule", SUBMODULE, "--patch", PATCH, "--cache-dir", str(shared_cache)]) == 0
    assert "v1.17.0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("pyproject", "message"),
    [
        (None, "has no pyproject.toml; add one with a [tool.mas-harness] table"),
        ('[project]\nname = "chat"\n', "has no [tool.mas-harness] table"),
        (f'[tool.mas-harness]\npatch = "{PATCH}"\n', "`submodule` is missing; set it or pass --submodule"),
        (f'[tool.mas-harness]\nsubmodule = "{SUBMODULE}"\n', "`patch` is missing; set it or pass --patch"),
        (CONFIG + 'submodul = "x"\n', "unknown key `submodul`"),
        ('[tool.mas-harness]\nsubmodule = 3\npatch = "p"\n', "`submodule` must be a non-empty string"),
        ('[tool]\nmas-harness = "docker/chat/mas/repo"\n', "[tool.mas-harness] must be a table"),
        ("[tool.mas-harness\nsubmodule = 1\n", "is not valid TOML"),
        (f'[tool.mas-harness]\nsubmodule = "../x"\npatch = "{PATCH}"\n', "must be a path inside the superproject"),
        (f'[tool.mas-harness]\nsubmodule = "docker"\npatch = "{PATCH}"\n', "docker is not a submodule"),
        (f'[tool.mas-harness]\nsubmodule = "{SUBMODULE}"\npatch = "nope.patch"\n', "nope.patch does not exist"),
    ],
)
def test_missing_or_invalid_configuration_is_one_line_and_exit_2(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str], pyproject: str | None, message: str
) -> None:
    config = superproject / "pyproject.toml"
    if pyproject is None:
        config.unlink()
    else:
        config.write_text(pyproject)
    for command in (_verify(superproject, shared_cache), ["apply", "--superproject", str(superproject)]):
        assert main(command) == 2
        assert message in _error_line(capsys)


def test_an_invalid_table_found_on_the_way_up_is_reported(
    superproject: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (superproject / "pyproject.toml").write_text("[tool.mas-harness]\nsubmodule = []\n")
    monkeypatch.chdir(superproject / SUBMODULE)
    assert main(["status"]) == 2
    assert "`submodule` must be a non-empty string" in _error_line(capsys)


def test_verify_and_bump_to_outside_a_superproject_say_how_to_name_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["verify"]) == 2
    assert "no superproject" in _error_line(capsys)
    assert main(["compat", "--bump-to", "v1.18.0"]) == 2
    assert "pass --superproject DIR" in _error_line(capsys)


def test_an_uninitialised_submodule_is_verified_from_its_remote_and_not_applied(
    superproject: Path, upstream_clone: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(superproject, "submodule", "deinit", "--quiet", "--force", SUBMODULE)
    assert main(_verify(superproject, shared_cache, "--json")) == 0
    report = _report(capsys)
    assert report["source"] == str(upstream_clone)
    assert (report["checked_out"], report["compat"]["state"]) == (None, "applies")
    assert main(["apply", "--superproject", str(superproject)]) == 2
    assert f"git submodule update --init {SUBMODULE}" in _error_line(capsys)


def test_resolution_paths_flags_relative_to_cwd_table_relative_to_the_pyproject(superproject: Path) -> None:
    nested = superproject / "docker" / "chat"
    from_table = resolve_superproject(SuperprojectFlags(), cwd=nested)
    assert from_table is not None
    assert (from_table.root, from_table.submodule, from_table.patches) == (
        superproject,
        SUBMODULE,
        (superproject / PATCH,),
    )
    assert from_table.config_file == superproject / "pyproject.toml"
    from_flags = resolve_superproject(
        SuperprojectFlags(submodule=Path("mas/repo"), patch=Path("mas/patches/other.patch")), cwd=nested
    )
    assert from_flags is not None
    assert (from_flags.submodule, from_flags.patches) == (SUBMODULE, (nested / "mas/patches/other.patch",))
    assert resolve_superproject(SuperprojectFlags(), cwd=nested, discover=False) is None
    with pytest.raises(BadInput, match="outside the superproject"):
        resolve_superproject(SuperprojectFlags(submodule=Path("../../..")), cwd=nested)


def test_upstream_and_pins_keys_of_the_table(
    superproject: Path, bundle: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pinned = (pins_file()).read_text()
    start = pinned.index(f'tag = "{PINNED_TAG}"')
    end = pinned.index("[[pin]]", start)
    moved = pinned[:start] + re.sub(r'dockerfile_blob = "\w+"', f'dockerfile_blob = "{"0" * 40}"', pinned[start:end])
    (superproject / "moved-pins.toml").write_text(moved + pinned[end:])
    (superproject / "patches").symlink_to(patches_dir())
    config = superproject / "pyproject.toml"

    config.write_text(CONFIG + f'upstream = "{bundle}"\n')
    assert main(_verify(superproject, shared_cache, "--json")) == 0
    report = _report(capsys)
    assert (report["source"], report["tag"]) == (str(bundle), PINNED_TAG)

    # The recorded commit is tagged v1.17.0, so a pin of that tag with another Dockerfile is a moved tag.
    config.write_text(CONFIG + 'pins = "moved-pins.toml"\n')
    assert main(_verify(superproject, shared_cache)) == 2
    error = _error_line(capsys)
    assert PINNED_TAG in error
    assert "0" * 40 in error


@pytest.mark.parametrize(
    "ref", ["@{-1}", "main@{1.year.ago}", "HEAD@{1}", "v1.16.0..v1.17.0", f"{PINNED_TAG}:Dockerfile"]
)
def test_reflog_range_and_path_expressions_are_refused_in_a_superproject_too(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str], ref: str
) -> None:
    """The submodule's own repository would make something of each (its reflog has the checkout it was made with):
    what they name is that clone's history, not the upstream's."""
    assert git(superproject / SUBMODULE, "rev-parse", "--verify", "--quiet", ref.split("..", maxsplit=1)[0])
    for argv in (
        ["compat", "--superproject", str(superproject), "--cache-dir", str(shared_cache), "--bump-to", ref],
        ["refresh", "--superproject", str(superproject), "--cache-dir", str(shared_cache), "--ref", ref, "--output",
         str(superproject / "new.patch")],
    ):  # fmt: skip
        assert main(argv) == 2
        assert f"invalid ref {ref!r}" in _error_line(capsys)
    assert not (superproject / "new.patch").exists()


@pytest.mark.parametrize("linked", [SUBMODULE, SUBMODULE.split("/", maxsplit=1)[0]], ids=["the-submodule", "a-parent"])
@pytest.mark.parametrize("command", ["apply", "status", "verify"])
def test_a_submodule_path_through_a_symbolic_link_is_refused(
    linked: str, command: str, superproject: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A link on the submodule's path would take apply's writes to a directory elsewhere: refused, not followed."""
    elsewhere = tmp_path / "elsewhere"
    shutil.move(superproject / linked, elsewhere)
    (superproject / linked).symlink_to(elsewhere, target_is_directory=True)
    # Still a working submodule when reached through the link: git finds its repository by an absolute path.
    (superproject / SUBMODULE / ".git").write_text(f"gitdir: {superproject / '.git' / 'modules' / SUBMODULE}\n")
    assert git(superproject / SUBMODULE, "rev-parse", "HEAD") == git(superproject, "rev-parse", f"HEAD:{SUBMODULE}")
    dockerfile = superproject / SUBMODULE / "Dockerfile"
    before = dockerfile.read_bytes()

    argv = [command, "--superproject", str(superproject)]
    assert main([*argv, *(["--cache-dir", str(tmp_path / "c")] if command == "verify" else [])]) == 2
    assert f"{linked} is a symbolic link (-> {elsewhere})" in _error_line(capsys)
    assert dockerfile.read_bytes() == before


def _compat_json(superproject: Path, cache: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    argv = ["compat", "--superproject", str(superproject), "--cache-dir", str(cache), "--json", *args]
    code = main(argv)
    return code, _report(capsys)


def test_bump_to_latest_checks_the_newest_release_and_names_it(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _untouched_state(superproject)
    code, report = _compat_json(superproject, shared_cache, capsys, "--bump-to", "latest")
    assert code == 1, "the v0.15-v1.17 patch does not fit v1.19.0"
    assert (report["ref"], report["tag"], report["latest"], report["up_to_date"]) == (
        "v1.19.0",
        "v1.19.0",
        "v1.19.0",
        False,
    )
    assert report["document"]["latest"] == "v1.19.0"
    assert report["compat"]["ref"] == "v1.19.0"
    assert report["document"]["suggestion"]["export_command"].startswith("mas-harness patch --for v1.19.0 ")

    assert main(["compat", "--superproject", str(superproject), "--cache-dir", str(shared_cache), "--bump-to",
                 "latest"]) == 1  # fmt: skip
    out = capsys.readouterr().out
    assert f"latest is v1.19.0 (the newest release tag of {SUBMODULE}'s repository and its remote " in out
    assert _untouched_state(superproject) == before


def test_compat_latest_in_a_superproject_asks_the_submodules_upstream(
    superproject: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found from the working directory, as `compat --bump-to` is: not the harness's own pinned upstream."""
    monkeypatch.chdir(superproject / "docker")
    git_dir = git(superproject / SUBMODULE, "rev-parse", "--absolute-git-dir")
    for argv in (["--latest"], ["latest"]):
        assert main(["compat", "--cache-dir", str(shared_cache), "--json", *argv]) == 1
        report = _report(capsys)
        assert (report["document"]["mode"], report["ref"], report["source"]) == ("superproject", "v1.19.0", git_dir)
    assert main(["compat", "--cache-dir", str(shared_cache), "--latest", "v1.18.0"]) == 2
    assert "--bump-to" in _error_line(capsys)
    assert main(["compat", "--cache-dir", str(shared_cache), "--bump-to", "latest", "--offline"]) == 2
    assert "--offline asks it nothing" in _error_line(capsys)


def test_latest_the_submodule_lacks_is_read_from_its_remote(
    superproject: Path, shared_cache: Path, upstream_clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A clone fetched before the newest release: its remote still has it."""
    git(superproject / SUBMODULE, "tag", "-d", "v1.19.0")
    code, report = _compat_json(superproject, shared_cache, capsys, "--bump-to", "latest")
    assert code == 1
    assert (report["ref"], report["latest"], report["source"]) == ("v1.19.0", "v1.19.0", str(upstream_clone))


def test_bump_to_latest_at_the_newest_release_is_up_to_date(
    superproject: Path, shared_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(superproject / SUBMODULE, "checkout", "--quiet", "v1.19.0")
    (superproject / PATCH).write_bytes((patches_dir() / "patch-dockerfile-v1.18.patch").read_bytes())
    _commit(superproject, "MAS v1.19.0 with the v1.18+ patch")
    code, report = _compat_json(superproject, shared_cache, capsys, "--bump-to", "latest")
    assert code == 0
    assert (report["ref"], report["up_to_date"]) == ("v1.19.0", True)
    [result] = report["document"]["results"]
    assert (result["name"], result["status"]) == ("bump", "ok")
    assert main(["compat", "--superproject", str(superproject), "--cache-dir", str(shared_cache), "--bump-to",
                 "latest"]) == 0  # fmt: skip
    assert f"up to date at v1.19.0: {SUBMODULE} already records the newest release" in capsys.readouterr().out


def test_patch_for_latest_in_a_superproject_writes_the_newest_releases_variant(
    superproject: Path, shared_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fitted.patch"
    argv = ["patch", "--superproject", str(superproject), "--cache-dir", str(shared_cache), "--for", "latest"]
    assert main([*argv, "--output", str(out), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["ref"], document["latest"], document["variant"]) == ("v1.19.0", "v1.19.0", "v1.18+")
    assert out.read_bytes() == (patches_dir() / "patch-dockerfile-v1.18.patch").read_bytes()


def test_one_verify_parses_each_dockerfile_it_reads_once(
    superproject: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A cache of its own: stored verdicts would spare the parses this test counts.
    parses = count_parses(monkeypatch)
    assert main(_verify(superproject, tmp_path / "cache", "--json")) == 0
    assert len(parses) == 2, "upstream's Dockerfile and the patched one"
    assert set(parses.values()) == {1}
    capsys.readouterr()

    # Where the patch does not fit, the harness's variant is checked too: the same pristine file, one more.
    parses.clear()
    git(superproject / SUBMODULE, "checkout", "--quiet", "v1.18.0")
    git(superproject, "add", SUBMODULE)
    assert main(_verify(superproject, tmp_path / "cache-bump", "--json")) == 1
    assert _report(capsys)["document"]["suggestion"]["variant"], "the variant was checked"
    assert len(parses) == 2, "upstream's Dockerfile and the variant's patched one"
    assert set(parses.values()) == {1}


def test_a_check_that_stops_apply_is_its_one_failed_result_in_every_report(
    superproject: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A submodule checked out at another commit than recorded stops `apply` before it has results of its own:
    the JSON and the JUnit still carry that check, failed, and stderr says it in one line."""
    git(superproject / SUBMODULE, "checkout", "--quiet", "v1.18.0")
    junit = tmp_path / "apply.xml"
    assert main(["apply", "--superproject", str(superproject), "--json", "--junit", str(junit)]) == 1
    out = capsys.readouterr()
    assert out.err.count("\n") == 1 and "the superproject records" in out.err
    document = json.loads(out.out)
    [result] = document["results"]
    assert (document["command"], document["status"], result["status"]) == ("apply", "failed", "failed")
    assert "the superproject records" in result["reason"]
    [case] = ElementTree.fromstring(junit.read_bytes()).findall("./testsuite/testcase")
    assert case.find("failure") is not None
    assert git(superproject / SUBMODULE, "status", "--porcelain") == "", "nothing was applied"
