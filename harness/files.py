"""Writing files all at once or not at all, and reading and writing inside a tree without leaving it.

Every file the harness leaves behind is written by `atomic_write` (a path the user named, a report, a
plot; `write_json` for the JSON reports) or `write_in_tree` (a file of a checkout the patch names). Both
write a temporary file beside the target and rename it over the target, so a crash leaves the old file or
the new one, never half of one. Not through them: the build log, streamed while the build runs; scratch
files in the harness's own temporary directories; and the files of a base image's root file system, which
`build` assembles under its cache's work directory to pack into the image.

Inside a checkout, a path is walked one component at a time from the checkout's own
directory with O_NOFOLLOW, as git apply does with its "beyond a symbolic link" check:
a symbolic link anywhere on the path, or a target that is not a regular file, is
refused before anything is read or written, and the walk cannot be redirected between
the check and the write because every step holds the directory it checked open.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import stat
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from harness.errors import BadInput

TEMP_SUFFIX = ".mas-harness"
"""Temporary files are `.NAME.<random>.mas-harness` beside their target: a crash can leave one, never a half file."""
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_TREE_DIRECTORY = _DIRECTORY | os.O_NOFOLLOW


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


MAX_INPUT_BYTES = 2**20
"""The most the harness reads of one input file (1 MiB): a patch, a Dockerfile (upstream's blob or the user's), a
pins, series or pyproject.toml file. A real patch is about 5 KB and MAS's Dockerfile about 10 KB, so a larger file is
a mistake (a generated diff, the wrong file, not MAS)."""
MAX_REPORT_BYTES = 64 * 2**20
"""The most it reads of a report a run wrote (a JUnit file, a JSON report, a profile): they grow with the tests and
samples they hold, to a few MB."""


def size_text(size: int) -> str:
    return f"{size:,} bytes ({size / 2**20:.1f} MiB)" if size >= 2**20 else f"{size:,} bytes"


# -- reading what the user names ----------------------------------------------------------------------


def read_input(
    path: Path, what: str, *, limit: int = MAX_INPUT_BYTES, error: type[BadInput] = BadInput
) -> bytes | None:
    """The bytes of the regular file `path` (the user's `what`), None when it does not exist.

    Anything but a regular file (a named pipe, a device, a directory) is refused without
    blocking, and no more than `limit` bytes are ever read: an input that never ends
    (/dev/zero, a pipe nobody writes) costs no more than a real one. Links are followed:
    a link to a file is that file.
    """
    try:
        # Looked at before it is opened: opening a device can do things (a tape rewinds, a terminal is taken).
        status = path.stat()
        _refuse_special(path, what, status.st_mode, error)
        # O_NONBLOCK: should a named pipe replace the file after the look, opening it must not hang.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(handle.fileno())
        _refuse_special(path, what, status.st_mode, error)
        if status.st_size > limit:
            raise error(_too_big(path, what, status.st_size, limit))
        try:
            # One byte past the limit: a file that grows while it is read costs no more than a real one.
            data = handle.read(limit + 1)
        except OSError as exc:
            raise error(f"{what} {path} cannot be read: {exc.strerror}") from None
    if len(data) > limit:
        raise error(f"{what} {path} grew beyond {size_text(limit)} while it was read: refusing it")
    return data


def _refuse_special(path: Path, what: str, mode: int, error: type[BadInput]) -> None:
    if not stat.S_ISREG(mode):
        raise error(f"{what} {path} is {_kind(mode)}, not a regular file: name the file")


def _too_big(path: Path, what: str, size: int, limit: int) -> str:
    return (
        f"{what} {path} is {size_text(size)}, more than the {size_text(limit)} such a file plausibly has: "
        "is it the right file?"
    )


# -- one atomic writer ------------------------------------------------------------------------------


def _temp_name(name: str) -> str:
    return f".{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


def is_temp_of(name: str, candidate: str) -> bool:
    """Whether `candidate` is a temporary file a write of `name` makes (and a crash may leave)."""
    found = _TEMP_NAME.match(candidate)
    return found is not None and found.group("name") == name


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _write_at(at: tuple[int, str], data: bytes, *, mode: int, owner: tuple[int, int] | None, replace: bool) -> None:
    """Write `data` to `name` in the open `directory` (`at`) through a temporary file and one rename (or link)."""
    directory, name = at
    tmp = _temp_name(name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=directory)
    try:
        try:
            _write_all(fd, data)
            if owner is not None:
                # Run with sudo, the harness must not hand the user's file to root.
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, *owner)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, name, src_dir_fd=directory, dst_dir_fd=directory)
        else:
            # A hard link never replaces what is at `name`, whatever appeared there since the caller looked.
            os.link(tmp, name, src_dir_fd=directory, dst_dir_fd=directory, follow_symlinks=False)
        # The rename is only durable once the directory is: a journal that says "done" must not outlive it.
        os.fsync(directory)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=directory)


def atomic_write(path: Path, data: bytes, *, mode: int | None = None, replace: bool = True) -> None:
    """Write all of `data` to `path` or nothing, through a temporary file in the same directory.

    `mode` defaults to the mode of the file being replaced (0o644 for a new one). Without
    `replace`, an existing `path` is never replaced, not even one that appeared meanwhile.
    """
    directory = os.open(path.parent, _DIRECTORY)
    try:
        if mode is None:
            try:
                mode = os.stat(path.name, dir_fd=directory).st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o644
        _write_at((directory, path.name), data, mode=mode, owner=None, replace=replace)
    except FileExistsError:
        raise BadInput(f"{path} exists: refusing to overwrite it (pass --force to replace it)") from None
    finally:
        os.close(directory)


def write_json(path: Path, document: object) -> None:
    """A JSON report the harness writes into a directory of its own (a build's, a profile's): indented, with a
    final newline, through `atomic_write`, so a reader never sees half of one."""
    atomic_write(path, (json.dumps(document, indent=2) + "\n").encode())


STANDARD_OUTPUT = "-"
"""A report path of `-` is standard output."""


def is_standard_output(path: Path) -> bool:
    return str(path) == STANDARD_OUTPUT


def output_name(path: Path) -> str:
    """A written path as a message names it: `-` is standard output."""
    return "standard output" if is_standard_output(path) else str(path)


def is_stream(path: Path) -> bool:
    """A character device or a named pipe (/dev/null, /dev/stdout, a FIFO): written into, never replaced."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _write_to_standard_output(data: bytes) -> None:
    sys.stdout.flush()
    binary = getattr(sys.stdout, "buffer", None)
    if binary is not None:
        binary.write(data)
        binary.flush()
    else:
        sys.stdout.write(data.decode(errors="replace"))
        sys.stdout.flush()


def _write_into_stream(path: Path, data: bytes) -> None:
    # O_NONBLOCK: a named pipe nobody reads fails now (ENXIO) instead of waiting forever for a reader.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "it is a named pipe nobody is reading") from None
        raise
    try:
        status = os.fstat(fd)
        if not (stat.S_ISCHR(status.st_mode) or stat.S_ISFIFO(status.st_mode)):
            # Replaced by something else since it was looked at: never write through it.
            raise OSError(errno.EINVAL, f"{path} is no longer a device or a named pipe")
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def write_output(path: Path, data: bytes, *, mode: int | None = None, replace: bool = True) -> None:
    """Write a report the user asked for: `-` to standard output, into a device or a named pipe as it is, any
    other path by `atomic_write` (so a regular file, or nothing, is what is left there)."""
    if is_standard_output(path):
        _write_to_standard_output(data)
    elif is_stream(path):
        _write_into_stream(path, data)
    else:
        atomic_write(path, data, mode=mode, replace=replace)


# -- inside a tree ----------------------------------------------------------------------------------


def _parts(name: str) -> tuple[str, ...]:
    pure = PurePosixPath(name)
    if pure.is_absolute() or not pure.parts or any(part in (".", "..") for part in pure.parts):
        raise BadInput(f"{name!r} is not a path inside the checkout; refusing it")
    return pure.parts


def _link_text(directory: int, name: str) -> str | None:
    """Where the symbolic link `name` points, None when it is not a link."""
    try:
        return os.readlink(name, dir_fd=directory)
    except OSError:
        return None


def _walk(root: Path, name: str, parts: tuple[str, ...]) -> int | None:
    """The open directory holding the last of `parts`, walked from `root` without following a link; None when a
    directory on the way is missing."""
    try:
        directory = os.open(root, _DIRECTORY)
    except OSError as exc:
        raise BadInput(f"checkout {root} cannot be opened: {exc.strerror}") from None
    for depth, part in enumerate(parts[:-1]):
        try:
            inner = os.open(part, _TREE_DIRECTORY, dir_fd=directory)
        except OSError as exc:
            walked = "/".join(parts[: depth + 1])
            # O_DIRECTORY with O_NOFOLLOW fails on a link with ENOTDIR or ELOOP, depending on the kernel: ask.
            link = _link_text(directory, part) if exc.errno in (errno.ELOOP, errno.ENOTDIR) else None
            os.close(directory)
            if exc.errno == errno.ENOENT:
                return None
            if link is not None:
                raise BadInput(
                    f"{root / name} is beyond a symbolic link ({walked} -> {link}): a patch changes files inside "
                    "the checkout only, and git apply refuses it too"
                ) from None
            if exc.errno == errno.ENOTDIR:
                raise BadInput(f"{root / name}: {walked} is not a directory") from None
            raise BadInput(f"{root / name}: cannot open {walked}: {exc.strerror}") from None
        os.close(directory)
        directory = inner
    return directory


@contextlib.contextmanager
def _parent_in_tree(root: Path, name: str) -> Iterator[tuple[int, str] | None]:
    """The open directory holding `name` under `root`, and the last component; None when a directory is missing."""
    parts = _parts(name)
    directory = _walk(root, name, parts)
    if directory is None:
        yield None
        return
    try:
        yield directory, parts[-1]
    finally:
        os.close(directory)


def _regular(directory: int, leaf: str, shown: Path) -> os.stat_result | None:
    """The status of `leaf` when it is a regular file, None when it is absent; anything else is refused."""
    try:
        status = os.stat(leaf, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(status.st_mode):
        raise BadInput(
            f"{shown} is a symbolic link (-> {_link_text(directory, leaf) or '?'}), not a regular file: refusing to "
            "read or replace it (git apply refuses it too)"
        )
    if not stat.S_ISREG(status.st_mode):
        raise BadInput(f"{shown} is {_kind(status.st_mode)}, not a regular file: refusing to read or replace it")
    return status


def read_in_tree(root: Path, name: str, *, limit: int) -> bytes | None:
    """The bytes of the regular file `name` under `root`, or None when it is absent.

    Refused (bad input): a path through a symbolic link, a target that is not a regular
    file, or one larger than `limit` bytes.
    """
    shown = root / name
    try:
        return _read(root, name, limit=limit)
    except OSError as exc:
        raise BadInput(f"{shown} cannot be read: {exc.strerror}") from None


def _read(root: Path, name: str, *, limit: int) -> bytes | None:
    shown = root / name
    with _parent_in_tree(root, name) as found:
        if found is None:
            return None
        directory, leaf = found
        if _regular(directory, leaf, shown) is None:
            return None
        # O_NONBLOCK: should a named pipe replace the file after the check, opening it must not hang.
        fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=directory)
        with os.fdopen(fd, "rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise BadInput(f"{shown} is {_kind(status.st_mode)}, not a regular file: refusing to read it")
            if status.st_size > limit:
                raise BadInput(
                    f"{shown} is {size_text(status.st_size)}, more than the {size_text(limit)} a Dockerfile "
                    "plausibly has: refusing to read it (is this the right checkout?)"
                )
            data = handle.read(limit + 1)
    if len(data) > limit:
        raise BadInput(f"{shown} grew beyond {size_text(limit)} while it was read: refusing it")
    return data


def write_in_tree(root: Path, name: str, data: bytes) -> None:
    """Replace the regular file `name` under `root` (or create it) atomically, keeping its mode and owner.

    Refused as in `read_in_tree`; the rename replaces a directory entry inside the
    checkout and never follows a link, whatever changed since the check.
    """
    shown = root / name
    with _parent_in_tree(root, name) as found:
        if found is None:
            raise BadInput(f"cannot write {shown}: its directory does not exist")
        directory, leaf = found
        status = _regular(directory, leaf, shown)
        mode = status.st_mode & 0o7777 if status is not None else 0o644
        owner = (status.st_uid, status.st_gid) if status is not None else None
        _write_at((directory, leaf), data, mode=mode, owner=owner, replace=True)


def remove_stray_temps(root: Path, name: str) -> list[str]:
    """Delete the temporary files an interrupted write of `name` under `root` left beside it; their names."""
    removed: list[str] = []
    with _parent_in_tree(root, name) as found:
        if found is None:
            return removed
        directory, leaf = found
        for entry in os.listdir(directory):  # noqa: PTH208  # a directory descriptor, which pathlib cannot list
            if not is_temp_of(leaf, entry):
                continue
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISREG(os.stat(entry, dir_fd=directory, follow_symlinks=False).st_mode):
                    os.unlink(entry, dir_fd=directory)
                    removed.append(str(PurePosixPath(name).parent / entry))
    return removed


@contextlib.contextmanager
def locked_tree(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the checkout directory itself (flock), so two runs never write it at once.

    Locking the directory creates no file in the user's tree.
    """
    try:
        directory = os.open(root, _DIRECTORY)
    except OSError as exc:
        raise BadInput(f"checkout {root} cannot be opened: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(directory, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BadInput(
                f"another mas-harness run is writing {root} right now; run this one when it has finished"
            ) from None
        yield
    finally:
        os.close(directory)
