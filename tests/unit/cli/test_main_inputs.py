"""An input the user names (the patch, the pins and series files, pyproject.toml, --resolved, check's Dockerfiles) is
read only when it is a regular file, and never past its limit: a named pipe, a device or a directory is one line and
exit 2 at once, never a run that waits for a writer or reads /dev/zero until memory runs out.

Each case runs `python -m harness` with a time and an address-space limit, so that a regression fails the test
instead of hanging the suite or exhausting the machine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.resources import pins_file
from tests.support import BUNDLE

PATCH = Path(__file__).resolve().parents[3] / "patches" / "patch-dockerfile.patch"
MEMORY = 2 * 2**30
"""Far more than any of these runs needs; a run that reads an endless input meets it within a second."""

# A place in the arguments, and what to put there: a named pipe, a device, a directory.
Kind = tuple[str, Callable[[Path], Path]]


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "named-pipe"
    os.mkfifo(path)
    return path


def _device(tmp_path: Path) -> Path:
    return Path("/dev/zero")


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "a-directory"
    path.mkdir()
    return path


KINDS: dict[str, Kind] = {
    "fifo": ("a named pipe", _fifo),
    "device": ("a device", _device),
    "directory": ("a directory", _directory),
}


def _compat(tmp_path: Path, *extra: str) -> list[str]:
    return ["compat", "--upstream", str(BUNDLE), "--cache-dir", str(tmp_path / "cache"), "--ref", "v1.7.0", *extra]


def _patch(tmp_path: Path, special: Path) -> tuple[list[str], str]:
    return _compat(tmp_path, "--patch", str(special)), f"patch {special}"


def _pins(tmp_path: Path, special: Path) -> tuple[list[str], str]:
    return _compat(tmp_path, "--pins", str(special)), f"pins file {special}"


def _series(tmp_path: Path, special: Path) -> tuple[list[str], str]:
    pins = tmp_path / "pins.toml"
    pins.write_text(pins_file().read_text().replace('series = "patches/series.toml"', f'series = "{special}"'))
    return _compat(tmp_path, "--pins", str(pins)), f"series file {special}"


def _pyproject(tmp_path: Path, special: Path) -> tuple[list[str], str]:
    superproject = tmp_path / "superproject"
    superproject.mkdir()
    (superproject / "pyproject.toml").symlink_to(special)
    return ["verify", "--superproject", str(superproject)], f"{superproject / 'pyproject.toml'} is"


def _resolved(tmp_path: Path, special: Path) -> tuple[list[str], str]:
    argv = ["refresh", "--upstream", str(BUNDLE), "--cache-dir", str(tmp_path / "cache"), "--ref", "v1.18.0"]
    argv += ["--patch", str(PATCH), "--output", str(tmp_path / "out.patch"), "--resolved", str(special)]
    return argv, f"resolved Dockerfile {special}"


def _dockerfile(tmp_path: Path, special: Path) -> tuple[list[str], str]:
    return ["check", "--dockerfile", str(special)], f"Dockerfile {special}"


def _pristine(tmp_path: Path, special: Path) -> tuple[list[str], str]:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return ["check", "--dockerfile", str(tmp_path / "Dockerfile"), "--pristine", str(special)], "pristine Dockerfile"


INPUTS: dict[str, Callable[[Path, Path], tuple[list[str], str]]] = {
    "patch": _patch,
    "pins": _pins,
    "series": _series,
    "pyproject": _pyproject,
    "resolved": _resolved,
    "check-dockerfile": _dockerfile,
    "check-pristine": _pristine,
}


# `python -m harness` with a cap on its address space, set in the child itself (no preexec_fn in a threaded parent).
LIMITED = (
    f"import resource, runpy; resource.setrlimit(resource.RLIMIT_AS, ({MEMORY}, {MEMORY})); "
    "runpy.run_module('harness', run_name='__main__')"
)


def _harness(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LIMITED, *argv],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "MAS_HARNESS_CACHE": str(cwd / "unchosen-cache")},
    )


@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
@pytest.mark.parametrize("given", INPUTS.values(), ids=INPUTS.keys())
def test_an_input_that_is_not_a_regular_file_is_one_line_and_exit_2_at_once(
    tmp_path: Path, given: Callable[[Path, Path], tuple[list[str], str]], kind: Kind
) -> None:
    what, make = kind
    argv, named = given(tmp_path, make(tmp_path))
    child = _harness(argv, tmp_path)
    assert "Traceback" not in child.stderr
    lines = child.stderr.strip().splitlines()
    assert (child.returncode, len(lines)) == (2, 1), child.stderr
    assert named in lines[0] and f"is {what}, not a regular file" in lines[0], lines[0]


def test_a_pins_file_past_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "pins.toml"
    with huge.open("wb") as handle:
        handle.truncate(2**40)  # sparse: a terabyte that costs no disk
    child = _harness(_compat(tmp_path, "--pins", str(huge)), tmp_path)
    assert (child.returncode, child.stderr.strip().splitlines()) == (
        2,
        [
            f"mas-harness: error: pins file {huge} is 1,099,511,627,776 bytes (1048576.0 MiB), more than the "
            "1,048,576 bytes (1.0 MiB) such a file plausibly has: is it the right file?"
        ],
    )
