"""One exception hierarchy and the exit codes it maps to; only the command line turns them into an exit.

| code | meaning |
|---|---|
| 0 | every check passed |
| 1 | a check failed (and only that) |
| 2 | bad input: the command cannot run as given (nothing of the user's written); a report unwritten after the work |
| 3 | the machine lacks a tool or an engine the command needs |
| 4 | an internal error of the harness (a bug): please report it |
| 5 | a tool the command ran (git, docker, shellcheck...) failed where it had to succeed; its own words are shown |
| 130 | interrupted |
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERNAL = 4
EXIT_TOOL_FAILED = 5
EXIT_INTERRUPTED = 130


class HarnessError(Exception):
    """Base of every error the harness raises on purpose.

    The message is shown to the user as it is: it must say what is wrong and
    what to do about it, on one line.
    """

    return_code: int = EXIT_BAD_INPUT


class BadInput(HarnessError):
    """The user asked for something that cannot be done as given (exit 2)."""


class PatchError(BadInput):
    """A patch file is missing, unreadable, malformed or unsafe."""


class UpstreamError(BadInput):
    """An upstream source or ref cannot be resolved."""


class PinMismatch(BadInput):
    """A checkout does not match its pin (a moved or re-tagged upstream tag)."""


class ToolFailed(HarnessError):
    """A tool the harness ran failed where it had to succeed (exit 5): the user's input was fine, the tool was not
    (a fetch that lost its network, a full disk, an engine that refused). Where a failure means bad input (an
    unknown ref), the caller raises that instead."""

    return_code = EXIT_TOOL_FAILED


class CommandFailed(ToolFailed):
    """An external command exited non-zero where success was required."""

    def __init__(self, argv: list[str], returncode: int, output: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.output = output
        lines = output.strip().splitlines()
        # git's own word comes first (`fatal: Unable to create '.../shallow.lock': File exists.`), its advice after.
        said = [line for line in lines if line.startswith("fatal:")]
        tail = said[0] if said else lines[-1] if lines else "no output"
        super().__init__(f"`{argv[0]} {' '.join(argv[1:3])} ...` exited {returncode}: {tail}")


class CheckFailed(HarnessError):
    """A verification ran and found the patch or the build wrong, and the command cannot go on (exit 1); the
    command's reports carry it as its one failed result."""

    return_code = EXIT_FAILED


class EnvironmentProblem(HarnessError):
    """The machine lacks something the harness needs (a tool, an engine, an optional dependency)."""

    return_code = EXIT_ENVIRONMENT
