"""Writing files all at once or not at all; the one implementation every writer uses."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness.errors import BadInput

TEMP_SUFFIX = ".mas-harness"
"""Temporary files are `.NAME.<random>.mas-harness` beside their target: a crash can leave one, never a half file."""


def atomic_write(path: Path, data: bytes, *, mode: int | None = None, replace: bool = True) -> None:
    """Write all of `data` to `path` or nothing, through a temporary file in the same directory.

    `mode` defaults to the mode of the file being replaced (0o644 for a new one). Without
    `replace`, an existing `path` is never replaced, not even one that appeared meanwhile.
    """
    if mode is None:
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        if replace:
            tmp.replace(path)
        else:
            # A hard link never replaces what is at `path`, whatever appeared there since the caller looked.
            os.link(tmp, path)
    except FileExistsError:
        raise BadInput(f"{path} exists: refusing to overwrite it (pass --force to replace it)") from None
    finally:
        tmp.unlink(missing_ok=True)


def refuse_clobber(path: Path, *, force: bool, protected: Sequence[Path] = ()) -> None:
    """Fail before any work if writing `path` would replace a file the user did not let us replace."""
    if any(path.resolve() == other.resolve() for other in protected):
        raise BadInput(f"{path} is an input of this command, which never writes its inputs; name another file")
    if path.exists() and not force:
        raise BadInput(f"{path} exists: refusing to overwrite it (pass --force to replace it)")
    if not path.parent.is_dir():
        raise BadInput(f"cannot write {path}: {path.parent} is not a directory")
