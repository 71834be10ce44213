"""A finding: one named check's verdict about one line of a patched Dockerfile."""

from __future__ import annotations

from dataclasses import dataclass

from harness.results import Location, Result, Status, status_of


@dataclass(frozen=True, kw_only=True)
class Finding:
    check: str
    ok: bool
    line: int | None
    message: str
    error: bool = False
    """The file could not be checked at all (it is not UTF-8 text): an ERROR for its ref, not a failed check."""
    needs: str = ""
    """With `error`: what the machine lacks for this check (e.g. `confinement`); the run then exits 3."""

    def result(self, *, group: str, path: str) -> Result:
        """As a reported result: `path` names the file the line is in (the patched Dockerfile of a ref)."""
        return Result(
            name=self.check,
            status=Status.ERROR if self.error else status_of(self.ok),
            reason=self.message,
            needs=self.needs,
            group=group,
            location=Location(path=path, line=self.line),
        )


def last_line(text: str) -> str:
    """The last non-empty line of a tool's output, for a one-line message."""
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"
