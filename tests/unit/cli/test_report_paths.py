"""A report never replaces the user's files: a report path that is an input, inside the checkout or submodule,
inside a git directory, or the same file as another report is refused with exit 2 before any work.

Every case runs the console entry point as the users do and compares every file of the test's directory,
byte for byte, before and after."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.cli.parser import build_parser
from harness.cli.report_paths import run_paths
from harness.config.pins import load_pins
from harness.report.destinations import refuse_unsafe_destinations
from harness.report.publish import Sinks
from tests.support import BUNDLE, git
from tests.support.numbered import UPSTREAM

PATCH = b"--- a/Dockerfile\n+++ b/Dockerfile\n@@ -3,3 +3,3 @@\n line 3\n-line 4\n+line 4 patched\n line 5\n"

Case = Callable[[Path, pytest.MonkeyPatch], tuple[list[str], str]]


def _snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under `root` (the harness's cache aside): a file's bytes, anything else its kind."""
    seen: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] == "cache":
            continue
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            seen[str(relative)] = path.read_bytes()
        elif stat.S_ISLNK(mode):
            seen[str(relative)] = f"link to {path.readlink()}"
        else:
            seen[str(relative)] = "directory" if stat.S_ISDIR(mode) else f"mode {stat.S_IFMT(mode):o}"
    return seen


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "Dockerfile").write_bytes(UPSTREAM)
    patch = tmp_path / "p.patch"
    patch.write_bytes(PATCH)
    return tree, patch


def _superproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A superproject as users keep one, the current directory: its table, its patch, its submodule."""
    root = tmp_path / "super"
    (root / "mas").mkdir(parents=True)
    (root / "mas" / "Dockerfile").write_bytes(UPSTREAM)
    (root / "p.patch").write_bytes(PATCH)
    (root / "pyproject.toml").write_text('[tool.mas-harness]\nsubmodule = "mas"\npatch = "p.patch"\n')
    (root / ".gitmodules").write_text('[submodule "mas"]\n\tpath = mas\n\turl = https://example.invalid/mas.git\n')
    monkeypatch.chdir(root)
    return root


def _upstream(tmp_path: Path) -> list[str]:
    return ["--upstream", str(BUNDLE), "--cache-dir", str(tmp_path / "cache")]


def status_output_is_the_patch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    tree, patch = _tree(tmp_path)
    return ["status", "--checkout", str(tree), "--patch", str(patch), "--output", str(patch)], "is the patch"


def apply_output_is_the_dockerfile_it_patches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    tree, patch = _tree(tmp_path)
    argv = ["apply", "--checkout", str(tree), "--patch", str(patch), "--output", str(tree / "Dockerfile")]
    return argv, "is inside the checkout"


def report_inside_the_checkout_it_works_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    tree, patch = _tree(tmp_path)
    monkeypatch.chdir(tree)
    return ["status", "--patch", str(patch), "--junit", "status.xml"], "is inside the checkout"


def verify_junit_is_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    _superproject(tmp_path, monkeypatch)
    return ["verify", "--junit", "pyproject.toml"], "pyproject.toml, an input of this run"


def status_markdown_is_gitmodules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    _superproject(tmp_path, monkeypatch)
    return ["status", "--markdown", ".gitmodules"], ".gitmodules, an input of this run"


def report_inside_the_submodule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    _superproject(tmp_path, monkeypatch)
    return ["verify", "--output", "mas/report.json"], "is inside the submodule"


def compat_bump_junit_is_the_superprojects_patch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[str], str]:
    _superproject(tmp_path, monkeypatch)
    return ["compat", "--bump-to", "v1.7.0", "--junit", "p.patch"], "an input of this run"


def refresh_junit_is_its_input_patch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    _, patch = _tree(tmp_path)
    argv = ["refresh", *_upstream(tmp_path), "--ref", "v1.7.0", "--patch", str(patch)]
    return [*argv, "--output", str(tmp_path / "new.patch"), "--junit", str(patch)], "is the patch"


def refresh_resolved_is_its_conflicts_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    _, patch = _tree(tmp_path)
    resolved = tmp_path / "resolved"
    resolved.write_bytes(UPSTREAM)
    argv = ["refresh", *_upstream(tmp_path), "--ref", "v1.7.0", "--patch", str(patch), "--resolved", str(resolved)]
    return [*argv, "--output", str(tmp_path / "o"), "--conflicts", str(resolved), "--force"], "--resolved file"


def patch_output_and_junit_are_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    same = tmp_path / "p"
    argv = ["patch", *_upstream(tmp_path), "--for", "v1.7.0", "--output", str(same), "--junit", str(same)]
    return argv, "--junit and --output both name"


def patch_output_is_the_pins_file_with_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    pins = tmp_path / "pins.toml"
    shipped = load_pins()
    pins.write_bytes(shipped.source.read_bytes())
    (tmp_path / "patches").symlink_to(shipped.source.parent / "patches", target_is_directory=True)
    argv = ["patch", *_upstream(tmp_path), "--pins", str(pins), "--for", "v1.7.0", "--output", str(pins), "--force"]
    return argv, "is the pins file"


def a_hard_link_to_another_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    tree, patch = _tree(tmp_path)
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.json").hardlink_to(tmp_path / "a.json")
    argv = ["status", "--checkout", str(tree), "--patch", str(patch)]
    return [*argv, "--output", str(tmp_path / "a.json"), "--markdown", str(tmp_path / "b.json")], "both name"


def a_hard_link_to_the_patch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    tree, patch = _tree(tmp_path)
    (tmp_path / "report.json").hardlink_to(patch)
    argv = ["status", "--checkout", str(tree), "--patch", str(patch)]
    return [*argv, "--output", str(tmp_path / "report.json")], "is the patch"


def a_link_to_the_patch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    tree, patch = _tree(tmp_path)
    (tmp_path / "report.json").symlink_to(patch)
    argv = ["status", "--checkout", str(tree), "--patch", str(patch)]
    return [*argv, "--junit", str(tmp_path / "report.json")], "is the patch"


def report_inside_a_git_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    tree, patch = _tree(tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    argv = ["status", "--checkout", str(tree), "--patch", str(patch)]
    return [*argv, "--junit", str(repo / ".git" / "config")], "is inside the git directory"


def report_inside_a_bare_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    tree, patch = _tree(tmp_path)
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    (bare / "refs" / "report.json").write_text("{}")
    argv = ["status", "--checkout", str(tree), "--patch", str(patch)]
    return [*argv, "--output", str(bare / "refs" / "report.json")], "is inside the git directory"


def patch_output_is_a_directory_with_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    (tmp_path / "out").mkdir()
    argv = ["patch", *_upstream(tmp_path), "--for", "v1.7.0", "--output", str(tmp_path / "out"), "--force"]
    return argv, "is a directory; name a file"


def refresh_output_is_a_socket_with_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    _, patch = _tree(tmp_path)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
    argv = ["refresh", *_upstream(tmp_path), "--ref", "v1.7.0", "--patch", str(patch), "--force"]
    return [*argv, "--output", str(tmp_path / "sock")], "is not a regular file"


def json_and_a_report_on_standard_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    tree, patch = _tree(tmp_path)
    argv = ["status", "--checkout", str(tree), "--patch", str(patch), "--json", "--junit", "-"]
    return argv, "--json and --junit - both write to standard output"


def a_plot_on_standard_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    return ["advise", "--memory", "16G", "--plot", "-"], "--plot cannot be standard output"


def advise_plot_is_its_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    (tmp_path / "trace.json").write_text("{}")
    trace = str(tmp_path / "trace.json")
    return ["advise", "--memory", "16G", "--trace", trace, "--plot", trace], "is a --trace file"


CASES: dict[str, Case] = {
    case.__name__.replace("_", "-"): case
    for case in (
        status_output_is_the_patch,
        apply_output_is_the_dockerfile_it_patches,
        report_inside_the_checkout_it_works_on,
        verify_junit_is_pyproject,
        status_markdown_is_gitmodules,
        report_inside_the_submodule,
        compat_bump_junit_is_the_superprojects_patch,
        refresh_junit_is_its_input_patch,
        refresh_resolved_is_its_conflicts_file,
        patch_output_and_junit_are_one_file,
        patch_output_is_the_pins_file_with_force,
        a_hard_link_to_another_report,
        a_hard_link_to_the_patch,
        a_link_to_the_patch,
        report_inside_a_git_directory,
        report_inside_a_bare_repository,
        patch_output_is_a_directory_with_force,
        refresh_output_is_a_socket_with_force,
        json_and_a_report_on_standard_output,
        a_plot_on_standard_output,
        advise_plot_is_its_trace,
    )
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_report_path_that_is_not_a_report_is_refused_before_any_work(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, message = case(tmp_path, monkeypatch)
    before = _snapshot(tmp_path)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert (code, len(err)) == (2, 1), err
    assert err[0].startswith("mas-harness: error: ") and message in err[0], err
    assert _snapshot(tmp_path) == before, "every file of the user's byte-identical, nothing added"
    assert not (tmp_path / "cache").exists(), "refused before any work: nothing fetched"


def test_force_writes_into_a_named_pipe_never_over_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(tmp_path / "pipe")
    argv = ["patch", *_upstream(tmp_path), "--for", "v1.7.0", "--output", str(tmp_path / "pipe"), "--force"]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert (code, len(err)) == (2, 1), err
    assert "a named pipe nobody is reading; nothing written" in err[0]
    assert stat.S_ISFIFO((tmp_path / "pipe").lstat().st_mode), "still the named pipe, not a file put in its place"


def test_a_dash_is_standard_output_and_the_tables_go_to_standard_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree, patch = _tree(tmp_path)
    assert main(["status", "--checkout", str(tree), "--patch", str(patch), "--junit", "-"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("<?xml"), captured.out[:200]
    assert "state: applies" in captured.err
    assert not (Path.cwd() / "-").exists(), "no file named -"


def test_patch_output_dash_writes_the_patch_to_standard_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["patch", *_upstream(tmp_path), "--for", "v1.7.0", "--output", "-"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(("Description:", "---", "diff", "From", "Author", "Subject")), captured.out[:200]
    assert "Dockerfile" in captured.out
    assert "wrote standard output" in captured.err


def test_a_report_that_cannot_be_written_after_an_apply_says_the_apply_was_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree, patch = _tree(tmp_path)
    (tmp_path / "full").symlink_to("/dev/full")
    argv = ["apply", "--checkout", str(tree), "--patch", str(patch), "--output", str(tmp_path / "r.json")]
    code = main([*argv, "--junit", str(tmp_path / "full")])
    err = capsys.readouterr().err.strip().splitlines()
    assert (code, len(err)) == (2, 1), err
    assert err[0].startswith(f"mas-harness: error: applied p.patch to {tree}; wrote --output "), err
    assert "the JUnit report could not be written" in err[0] and "No space left on device" in err[0]
    assert "nothing" not in err[0]
    assert b"line 4 patched" in (tree / "Dockerfile").read_bytes(), "the apply stands"
    assert (tmp_path / "r.json").is_file()


def test_patch_may_replace_the_superprojects_patch_as_compat_advises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`compat --bump-to` advises `mas-harness patch --for REF --output <the configured patch> --force`: `patch`
    never reads that file, so it is no input of its run."""
    root = _superproject(tmp_path, monkeypatch)
    args = build_parser().parse_args(["patch", "--for", "v1.7.0", "--output", "p.patch", "--force"])
    paths = run_paths(args, Sinks(), env={}, cwd=root)
    refuse_unsafe_destinations(paths)
    assert root / "pyproject.toml" in [path for _, path in paths.inputs]
    assert ("the submodule", root / "mas") in paths.trees
