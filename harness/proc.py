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

# A git the harness runs reads only the repository it is pointed at and the user's own configuration files. The
# GIT_* variables it inherits are dropped unless named here: a parent git exports its repository (GIT_DIR,
# GIT_WORK_TREE, GIT_INDEX_FILE from a hook or a rebase), its objects (GIT_OBJECT_DIRECTORY,
# GIT_ALTERNATE_OBJECT_DIRECTORIES), its ref view (GIT_NAMESPACE, GIT_REPLACE_REF_BASE) and its `-c` settings
# (GIT_CONFIG_PARAMETERS, GIT_CONFIG_COUNT/KEY_n/VALUE_n, which can name hooks or a fsmonitor to run), and any of
# them would make git read or change the caller's repository instead of ours, or answer differently. An allowlist,
# as pre-commit's `no_git_env`, also covers the variables a newer git adds. What stays says where git is installed,
# how it reaches a remote (the user's ssh, askpass, CA file and proxy), or where it writes a trace for the user;
# none of it changes which repository git reads or what it answers. GIT_SSL_NO_VERIFY is not kept: turning TLS
# checks off is not the harness's to inherit (a private CA is GIT_SSL_CAINFO). The variables the harness sets
# itself (identity, prompt, protocols) are set below, never inherited.
_GIT_KEPT = frozenset(
    {
        "GIT_EXEC_PATH",  # a relocated git finds its own subcommands
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_SSH_VARIANT",
        "GIT_PROXY_COMMAND",  # the git:// transport through the user's proxy
        "GIT_ASKPASS",  # credentials for an https upstream, without a terminal prompt
        "GIT_SSL_CAINFO",
        "GIT_SSL_CAPATH",
        "GIT_HTTP_PROXY_AUTHMETHOD",
        "GIT_TRACE",  # traces go to a file or stderr and change nothing git does
        "GIT_TRACE2",
        "GIT_TRACE2_EVENT",
        "GIT_TRACE2_PERF",
        "GIT_TRACE_PERFORMANCE",
        "GIT_TRACE_SETUP",
        "GIT_TRACE_PACKET",
        "GIT_TRACE_CURL",
    }
)

GIT_PROTOCOLS = ("https", "ssh", "git", "file")
"""The transports git may use for the harness: `file` covers local paths and bundles. Remote helpers such as
`ext::` (which runs a command) are never allowed, whatever the user's git configuration or environment says."""


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every command the harness runs: the caller's, less the GIT_* variables not kept.

    `extra` (the caller's own additions, such as GIT_CEILING_DIRECTORIES) is applied last and kept whole.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _GIT_KEPT}
    # Commits made by the harness (in its own caches) must not depend on the user's git identity.
    env["GIT_AUTHOR_NAME"] = "mas-harness"
    env["GIT_AUTHOR_EMAIL"] = "mas-harness@localhost"
    env["GIT_COMMITTER_NAME"] = "mas-harness"
    env["GIT_COMMITTER_EMAIL"] = "mas-harness@localhost"
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
