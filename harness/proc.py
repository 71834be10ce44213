"""The one subprocess helper: every git, docker, shellcheck call goes through it."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from harness.errors import CommandFailed, EnvironmentProblem

log = logging.getLogger("harness")

# Inherited GIT_* variables (GIT_DIR from a hook, GIT_INDEX_FILE from a rebase)
# would point git at the caller's repository instead of ours.
_GIT_LEAKS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")

GIT_PROTOCOLS = ("https", "ssh", "git", "file")
"""The transports git may use for the harness: `file` covers local paths and bundles. Remote helpers such as
`ext::` (which runs a command) are never allowed, whatever the user's git configuration or environment says."""


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LEAKS}
    # Commits made by the harness (in its own caches) must not depend on the user's git identity.
    env.setdefault("GIT_AUTHOR_NAME", "mas-harness")
    env.setdefault("GIT_AUTHOR_EMAIL", "mas-harness@localhost")
    env.setdefault("GIT_COMMITTER_NAME", "mas-harness")
    env.setdefault("GIT_COMMITTER_EMAIL", "mas-harness@localhost")
    env["GIT_TERMINAL_PROMPT"] = "0"
    # Git's own allow-list, set here rather than inherited: it overrides protocol.*.allow in every config,
    # GIT_CONFIG_PARAMETERS included, for every git the harness runs (and the git those run, e.g. for submodules).
    env["GIT_ALLOW_PROTOCOL"] = ":".join(GIT_PROTOCOLS)
    if extra:
        env.update(extra)
    return env


def run(
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input_bytes: bytes | None = None,
    capture: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command with list arguments, log it, and raise CommandFailed on a non-zero exit.

    Output is captured as bytes (Dockerfiles are compared byte for byte) with
    stderr kept apart, so callers can read a tool's diagnostics; without `capture`
    it goes to the terminal (an installer the user watches).
    """
    argv = [os.fspath(a) for a in args]
    program = shutil.which(argv[0])
    if program is None:
        raise EnvironmentProblem(f"`{argv[0]}` is not installed or not on PATH")
    log.debug("+ %s%s", shlex.join(argv), f"  (in {cwd})" if cwd else "")
    proc = subprocess.run(
        [program, *argv[1:]],
        cwd=cwd,
        env=clean_env(env),
        input=input_bytes,
        capture_output=capture,
        check=False,
    )
    if check and proc.returncode != 0:
        output = (proc.stderr or proc.stdout).decode(errors="replace")
        raise CommandFailed(argv, proc.returncode, output)
    return proc


def git(*args: str | os.PathLike[str], cwd: Path | None = None, check: bool = True) -> str:
    """Run git and return its stdout as text, stripped of the trailing newline (a path in it decoded as a file name,
    whatever its bytes)."""
    return os.fsdecode(run("git", *args, cwd=cwd, check=check).stdout).rstrip("\n")
