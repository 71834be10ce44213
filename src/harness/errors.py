"""One exception hierarchy; only the CLI edge turns these into exit codes."""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness raises on purpose.

    The message is shown to the user as it is: it must say what is wrong and
    what to do about it, on one line.
    """

    return_code: int = 2


class BadInput(HarnessError):
    """The user asked for something that cannot be done as given (exit 2)."""


class PatchError(BadInput):
    """A patch file is missing, unreadable, malformed or unsafe."""


class UpstreamError(BadInput):
    """An upstream source or ref cannot be resolved."""


class PinMismatch(BadInput):
    """A checkout does not match its pin (a moved or re-tagged upstream tag)."""


class CommandFailed(HarnessError):
    """An external command exited non-zero where success was required."""

    def __init__(self, argv: list[str], returncode: int, output: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.output = output
        tail = output.strip().splitlines()[-1] if output.strip() else "no output"
        super().__init__(f"`{argv[0]} {' '.join(argv[1:3])} ...` exited {returncode}: {tail}")


class CheckFailed(HarnessError):
    """A verification ran and found the patch or the build wrong (exit 1)."""

    return_code = 1


class EnvironmentProblem(HarnessError):
    """The machine lacks something the harness needs (a tool, an engine)."""

    return_code = 3
