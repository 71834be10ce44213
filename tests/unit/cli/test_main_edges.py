"""What the process meets before any command: closed standard streams, a current directory that is gone, an interrupt
while the harness is still being imported, paths that are not UTF-8 under the C locale, a TMPDIR with a space. Each is
handled, or one line with the right exit code, never a traceback.

Each case runs `python -m harness` in a process of its own, as the users' shells start it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from harness.upstream.cache import DOCKERFILE, UpstreamCache
from tests.support import BUNDLE, DockerfileTexts, MakeRepo, git

PATCH = Path(__file__).resolve().parents[3] / "patches" / "patch-dockerfile.patch"
HARNESS = [sys.executable, "-m", "harness"]


def _harness(
    argv: list[str], *, shell: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGV`, or `sh -c SHELL` with it as "$@" (to close a stream, or leave a directory first)."""
    command = [*HARNESS, *argv] if shell is None else ["sh", "-c", shell, "sh", *HARNESS, *argv]
    return subprocess.run(
        command, capture_output=True, text=True, errors="surrogateescape", check=False, timeout=300, env=env
    )


def _compat(tmp_path: Path, *extra: str) -> list[str]:
    return ["compat", "--upstream", str(BUNDLE), "--cache-dir", str(tmp_path / "cache"), "--ref", "v1.7.0", *extra]


def test_the_console_script_starts_at_the_edge() -> None:
    (script,) = entry_points(group="console_scripts", name="mas-harness")
    assert script.value == "harness.__main__:run"


# -- closed standard streams --------------------------------------------------------------------------


@pytest.mark.parametrize("closed", [">&-", ">&- 2>&-", "<&-"], ids=["stdout", "stdout-and-stderr", "stdin"])
def test_a_closed_standard_stream_costs_only_what_it_would_have_shown(tmp_path: Path, closed: str) -> None:
    report = tmp_path / "compat.json"
    child = _harness(_compat(tmp_path, "--output", str(report)), shell=f'exec "$@" {closed}')
    assert "Traceback" not in child.stderr and "internal error" not in child.stderr
    assert child.returncode == 0, child.stderr
    assert json.loads(report.read_text())["command"] == "compat", "nothing meant for the terminal landed in it"


def test_json_to_a_closed_standard_output_keeps_the_verdict(tmp_path: Path) -> None:
    child = _harness(_compat(tmp_path, "--json"), shell='exec "$@" >&-')
    assert (child.returncode, child.stderr) == (0, "")


# -- the current directory is gone --------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["status"], ["verify"], ["compat", "--offline"]], ids=lambda argv: argv[0])
def test_a_deleted_current_directory_is_one_line_and_exit_2(tmp_path: Path, argv: list[str]) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    child = _harness(argv, shell=f'cd "{gone}" && rmdir "{gone}" && exec "$@"')
    assert (child.returncode, child.stderr.splitlines()) == (
        2,
        [
            "mas-harness: error: the current directory no longer exists (it was deleted or moved): change to a "
            "directory that exists and run the command again"
        ],
    )


# -- an interrupt during the start-up imports ---------------------------------------------------------

INTERRUPT_AT_IMPORT = """
import runpy, sys

class Interrupt:
    '''A test double of Ctrl-C arriving while `{module}` is imported: the import raises KeyboardInterrupt.'''

    def find_spec(self, name, path=None, target=None):
        if name == "{module}":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
runpy.run_module("harness", run_name="__main__")
"""


@pytest.mark.parametrize("module", ["rich", "harness.cli.parser", "harness.config.run"])
def test_an_interrupt_during_the_start_up_imports_is_one_line_and_exit_130(tmp_path: Path, module: str) -> None:
    code = INTERRUPT_AT_IMPORT.replace("{module}", module)
    child = subprocess.run(
        [sys.executable, "-c", code, *_compat(tmp_path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert (child.returncode, child.stderr) == (130, "mas-harness: interrupted\n")


# -- paths that are not UTF-8, under the C locale -----------------------------------------------------


def test_a_checkout_whose_path_is_not_utf8_is_read_patched_and_reported_under_the_c_locale(
    bundle_cache: UpstreamCache, make_repo: MakeRepo, tmp_path: Path
) -> None:
    pristine = bundle_cache.read_blob(bundle_cache.resolve("v1.17.0").dockerfile_blob)
    tree = make_repo({DOCKERFILE: pristine}, name=os.fsdecode(b"caf\xe9"))
    markdown, summary = tmp_path / "status.md", tmp_path / "summary.md"
    env = {**os.environ, "LC_ALL": "C", "GITHUB_STEP_SUMMARY": str(summary)}
    patch = ["--patch", str(PATCH)]

    for command in ("status", "apply", "status", "revert"):
        child = _harness([command, "--checkout", str(tree), *patch, "--json"], env=env)
        assert (child.returncode, child.stderr) == (0, ""), command
        assert json.loads(child.stdout)["checkout"] == str(tree)
    child = _harness(["status", "--checkout", str(tree), *patch, "--markdown", str(markdown)], env=env)
    assert (child.returncode, child.stderr) == (0, "")
    assert "caf\\udce9" in markdown.read_text(encoding="utf-8") and "caf\\udce9" in summary.read_text(encoding="utf-8")
    assert (tree / DOCKERFILE).read_bytes() == pristine
    assert git(tree, "status", "--porcelain") == ""


def test_an_upstream_whose_path_is_not_utf8_is_cached_under_the_c_locale(tmp_path: Path) -> None:
    upstream = tmp_path / os.fsdecode(b"upstream-\xe9")
    subprocess.run(["git", "clone", "--quiet", "--mirror", str(BUNDLE), str(upstream)], check=True)
    env = {**os.environ, "LC_ALL": "C"}
    argv = ["compat", "--upstream", str(upstream), "--cache-dir", str(tmp_path / os.fsdecode(b"cache-\xe9"))]
    child = _harness([*argv, "--ref", "v1.7.0"], env=env)
    assert (child.returncode, child.stderr) == (0, "")


# -- a TMPDIR with a space in it ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["--unconfined", "confined"])
def test_a_temporary_directory_with_a_space_in_its_path_runs_the_build_script(
    dockerfile_texts: DockerfileTexts, tmp_path: Path, how: str, request: pytest.FixtureRequest
) -> None:
    if how == "confined":
        request.getfixturevalue("confinement")  # skips (or, in CI, fails) where nothing confines
    spaced = tmp_path / "my temp dir"
    spaced.mkdir()
    dockerfile = tmp_path / DOCKERFILE
    dockerfile.write_text(dockerfile_texts("v1.7.0")[1])
    flags = ["--unconfined"] if how == "--unconfined" else []
    child = _harness(
        ["check", "--dockerfile", str(dockerfile), "--no-cache", "--json", *flags],
        env={**os.environ, "TMPDIR": str(spaced)},
    )
    assert (child.returncode, child.stderr) == (0, ""), child.stdout
    assert json.loads(child.stdout)["scripts"]["mode"] == ("unconfined" if flags else "confined")
    assert list(spaced.iterdir()) == [], "every temporary directory removed"
