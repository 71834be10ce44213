"""A real crash of the harness: its own command line in a child process, killed with SIGKILL the moment it is about
to rename a chosen file into place (the only thing the child changes is that it kills itself there)."""

from __future__ import annotations

import signal
import subprocess
import sys

KILLED_AT_RENAME = """
import os, signal, sys
real_replace = os.replace
def replace_or_die(src, dst, **kwargs):
    if os.fspath(dst) == sys.argv[1]:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, **kwargs)
os.replace = replace_or_die
from harness.cli.main import main
raise SystemExit(main(sys.argv[2:]))
"""


def killed_at_rename(rename_of: str, *argv: str) -> None:
    """Run `mas-harness ARGV...` and kill it at the rename of the file named `rename_of` (its name in its directory),
    failing the test if it was not killed there."""
    child = subprocess.run(
        [sys.executable, "-c", KILLED_AT_RENAME, rename_of, *argv], capture_output=True, text=True, check=False
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
