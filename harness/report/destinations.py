"""Where a run's reports go, checked before any work against what the run reads and the trees it works on.

A report (a JSON, JUnit or Markdown file, GitHub's step summary, the patch `patch` and `refresh` write, a plot, a
report directory) is refused when it would replace one of the run's inputs, land in the checkout or submodule
the run works on or in a git directory, or be the same file as another report of the run. An existing path
that is not a regular file is never replaced: a device or a named pipe is written into, anything else refused.
`-` is standard output.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput
from harness.files import is_standard_output

GIT_DIR = ".git"


@dataclass(frozen=True, kw_only=True)
class Destination:
    """One file (or directory) a run writes for the user."""

    flag: str
    """How the user named it: `--junit`, `$GITHUB_STEP_SUMMARY`, `--output`."""
    path: Path
    replace: bool = True
    """Whether an existing regular file may be replaced (reports: always; `patch` and `refresh`: with --force)."""
    directory: bool = False
    """A directory the run fills (`--report-dir`), not a file."""
    to_standard_output: bool = True
    """Whether `-` (standard output) may stand for it: not for a directory, nor a plot named by its suffix."""


@dataclass(frozen=True, kw_only=True)
class RunPaths:
    """What a run reads, where it works and what it writes for the user, as named on its command line."""

    destinations: tuple[Destination, ...]
    inputs: tuple[tuple[str, Path], ...] = ()
    """(what it is, the path): the files the run reads, which no report replaces."""
    trees: tuple[tuple[str, Path], ...] = ()
    """(what it is, the directory): the checkout or submodule the run works on, where no report goes."""
    json_stdout: bool = False
    """`--json`: the JSON document takes standard output."""


def _real(path: Path) -> Path:
    # realpath resolves every link that exists and keeps the rest as written: a file yet to be made is named
    # by where it will be.
    return Path(os.path.realpath(path))


def _same_file(one: Path, other: Path) -> bool:
    if _real(one) == _real(other):
        return True
    try:
        return one.samefile(other)  # a hard link to the same inode
    except OSError:
        return False


def _is_git_directory(directory: Path) -> bool:
    """A repository's git directory (a `.git`, a bare repository, `.git/modules/NAME`), by what git needs in one."""
    try:
        return (directory / "HEAD").is_file() and (
            ((directory / "objects").is_dir() and (directory / "refs").is_dir()) or (directory / "commondir").is_file()
        )
    except OSError:
        return False


def _git_directory_of(path: Path) -> Path | None:
    """The git directory `path` is in (whatever its name), or None."""
    for candidate in (Path(os.path.normpath(path.absolute())), _real(path)):
        parts = candidate.parts
        for depth, part in enumerate(parts):
            if part.casefold() == GIT_DIR:
                return Path(*parts[: depth + 1])
        for directory in candidate.parents:
            if _is_git_directory(directory):
                return directory
    return None


def _inside(path: Path, tree: Path) -> bool:
    real, top = _real(path), _real(tree)
    return real == top or top in real.parents


def _check_kind(destination: Destination) -> None:
    flag, path = destination.flag, destination.path
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise BadInput(f"{flag} {path} cannot be written: {exc.strerror}") from None
    if destination.directory:
        if mode is not None and not stat.S_ISDIR(mode):
            raise BadInput(f"{flag} {path} is not a directory; name a directory")
    elif mode is not None:
        if stat.S_ISDIR(mode):
            raise BadInput(f"{flag} {path} is a directory; name a file")
        if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
            raise BadInput(f"{flag} {path} is not a regular file; name a file")
        if stat.S_ISREG(mode) and not destination.replace:
            raise BadInput(f"{path} exists: refusing to overwrite it (pass --force to replace it)")
    parent = path.parent if str(path.parent) else Path()
    if not parent.is_dir() and not destination.directory:
        raise BadInput(f"{flag} {path}: {parent} is not a directory")
    writable = path if mode is not None else parent
    needs = os.W_OK | os.X_OK if writable.is_dir() else os.W_OK
    if not os.access(writable, needs):
        raise BadInput(f"{flag} {path} cannot be written (permission denied)")


def _check_place(destination: Destination, paths: RunPaths) -> None:
    flag, path = destination.flag, destination.path
    git_dir = _git_directory_of(path)
    if git_dir is not None:
        raise BadInput(
            f"{flag} {path} is inside the git directory {git_dir}: a report never goes there; name a path outside it"
        )
    for what, tree in paths.trees:
        if _inside(path, tree):
            raise BadInput(
                f"{flag} {path} is inside {what} {tree}, which this run works on: a report never goes there; "
                "name a path outside it"
            )
    for what, given in paths.inputs:
        if _same_file(path, given):
            raise BadInput(
                f"{flag} {path} is {what} {given}, an input of this run, which never writes its inputs; name another "
                "file"
            )


def _check_distinct(destinations: Sequence[Destination], *, json_stdout: bool) -> None:
    seen: list[Destination] = []
    on_stdout = ["--json"] if json_stdout else []
    for destination in destinations:
        if is_standard_output(destination.path):
            on_stdout.append(f"{destination.flag} -")
            if len(on_stdout) > 1:
                raise BadInput(f"{' and '.join(on_stdout)} both write to standard output; send one of them to a file")
            continue
        for earlier in seen:
            if _same_file(earlier.path, destination.path):
                raise BadInput(
                    f"{earlier.flag} and {destination.flag} both name {destination.path}; give each report its own file"
                )
        seen.append(destination)


def refuse_unsafe_destinations(paths: RunPaths) -> None:
    """Refuse (bad input, before any work) a destination that would replace or damage what is not a report."""
    for destination in paths.destinations:
        if is_standard_output(destination.path):
            if destination.directory or not destination.to_standard_output:
                raise BadInput(f"{destination.flag} cannot be standard output (-); name a path")
            continue
        _check_kind(destination)
        _check_place(destination, paths)
    _check_distinct(paths.destinations, json_stdout=paths.json_stdout)


def takes_standard_output(paths: RunPaths) -> bool:
    """Whether a report other than --json goes to standard output: the tables then go to standard error."""
    return any(is_standard_output(destination.path) for destination in paths.destinations)
