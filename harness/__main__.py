"""The process's edge (`python -m harness` and the `mas-harness` script): what no command can answer for.

Before the command line is read: standard streams the caller closed (`>&-`) are opened
on /dev/null, so that no file the run opens takes their place and output meant for the
terminal cannot land in a report or a checkout; a current directory that no longer
exists is one line, exit 2; an interrupt while the harness is still being imported is
one line, exit 130, never a traceback.
"""

from __future__ import annotations

import os
import sys

from harness.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED


def _interrupted() -> int:
    print("mas-harness: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def _open_closed_streams() -> None:
    """Standard input, output and error the caller closed are /dev/null for this run: what is written is dropped,
    as on a reader that went away, and the verdict is the exit code."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", encoding="utf-8", closefd=False))  # noqa: SIM115


def run() -> int:
    _open_closed_streams()
    try:
        os.getcwd()  # noqa: PTH109  # before the imports: pathlib is one of them
    except FileNotFoundError:
        print(
            "mas-harness: error: the current directory no longer exists (it was deleted or moved): change to a "
            "directory that exists and run the command again",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        from harness.cli.main import main  # noqa: PLC0415  # an interrupt during the imports must be met here
    except KeyboardInterrupt:
        return _interrupted()
    try:
        return main()
    except KeyboardInterrupt:  # before the command started, or after it ended
        return _interrupted()


if __name__ == "__main__":
    raise SystemExit(run())
