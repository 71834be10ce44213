"""Results as data: what every command produces, and the one way they become an exit code.

The idea is nox's: a session ends in a `Result(status, reason, duration)` that serialises,
and one place prints the results, writes the reports and reduces them to an exit code.
Here every command ends in an `Outcome`: its `Result`s (one per ref, check or step, each
with a status, a one-line reason, how long it took, detail and, where there is one, the
file and line it is about), the tables a terminal shows, and the command's own JSON body.
`harness.report` renders an Outcome as a table, JSON, JUnit, Markdown and GitHub's step
summary; `exit_code()` below is the only place an exit code is decided from results.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from harness.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK, BadInput

SCHEMA_VERSION = 1
"""The version of the JSON every command writes; it changes only when a documented field changes meaning."""


class Status(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    """A check ran and found the patch, the Dockerfile or the build wrong."""
    ERROR = "error"
    """This item could not be checked as given (one odd ref of several: its Dockerfile is not UTF-8, say)."""
    SKIPPED = "skipped"

    @property
    def passed(self) -> bool:
        return self in (Status.OK, Status.SKIPPED)


def status_of(ok: bool) -> Status:
    return Status.OK if ok else Status.FAILED


@dataclass(frozen=True, kw_only=True)
class Location:
    """Where a result points: a file (as the user names it) and a 1-based line."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


@dataclass(frozen=True, kw_only=True)
class Result:
    name: str
    """What was checked: `state`, `knobs-declared`, `build`, ..."""
    status: Status
    reason: str
    """One line saying what was found."""
    group: str = ""
    """What it belongs to, e.g. `compat.v1.17.0` (a JUnit classname)."""
    duration: float = 0.0
    """Seconds spent on it."""
    detail: str = ""
    location: Location | None = None
    needs: str = ""
    """For an ERROR: what the machine lacks for this check to run (`confinement`, say); empty for bad input."""

    @property
    def passed(self) -> bool:
        return self.status.passed

    def serialize(self) -> dict[str, object]:
        needs = {"needs": self.needs} if self.needs else {}
        return {
            "group": self.group,
            "name": self.name,
            "status": str(self.status),
            "reason": self.reason,
            "duration": round(self.duration, 6),
            "detail": self.detail,
            "location": None if self.location is None else {"path": self.location.path, "line": self.location.line},
            **needs,
        }

    @classmethod
    def deserialize(cls, data: Mapping[str, object], *, where: str) -> Result:
        """A result as `serialize` wrote it; anything else is bad input naming `where`."""
        try:
            location = data.get("location")
            status = Status(str(data["status"]))
            return cls(
                name=str(data["name"]),
                status=status,
                reason=str(data.get("reason", "")),
                group=str(data.get("group", "")),
                duration=_number(data.get("duration", 0.0)),
                detail=str(data.get("detail", "")),
                needs=str(data.get("needs", "")),
                location=Location(path=str(location["path"]), line=_optional_int(location.get("line")))
                if isinstance(location, dict)
                else None,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise BadInput(f"{where}: not a result the harness wrote ({type(exc).__name__}: {exc})") from None


def _number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"duration {value!r} is not a number")


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"line {value!r} is not an integer")


@dataclass(frozen=True, kw_only=True)
class Column:
    header: str
    optional: bool = False
    """Left out first when the terminal is too narrow for every column."""


@dataclass(frozen=True, kw_only=True)
class Row:
    cells: tuple[str, ...]
    status: Status | None = None
    """The row's verdict, shown in the table's verdict column in the one vocabulary every table uses."""


@dataclass(frozen=True, kw_only=True)
class Table:
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]

    @property
    def has_verdict(self) -> bool:
        return any(row.status is not None for row in self.rows)


@dataclass(frozen=True, kw_only=True)
class Frame:
    """What the run says around a command's own findings, given to the Outcome when it is made: notes shown before
    them (the tag `latest` stood for), notes shown after (what was not asked, how upstream's script ran) and the
    run's JSON fields. Frames nest: `inner.within(outer)` puts the outer one's notes around the inner one's."""

    first: tuple[str, ...] = ()
    last: tuple[str, ...] = ()
    data: Mapping[str, object] = field(default_factory=dict)

    def within(self, outer: Frame) -> Frame:
        return Frame(
            first=(*outer.first, *self.first), last=(*self.last, *outer.last), data={**self.data, **outer.data}
        )


NO_FRAME = Frame()


class OutcomeParts(TypedDict):
    """An Outcome's own fields, for a command whose Outcome is built around another's (bump around verify's)."""

    title: str
    results: tuple[Result, ...]
    tables: tuple[Table, ...]
    notes: tuple[str, ...]
    data: Mapping[str, object]


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one command found: results, their tables, notes for the terminal, and the command's JSON body; made
    once, with the run's frame, and never edited after."""

    command: str
    title: str
    results: tuple[Result, ...]
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()
    """Lines shown after the tables: why a variant was chosen, what to run next."""
    data: Mapping[str, object] = field(default_factory=dict)
    """The command's own JSON fields (documented per command in the README), beside the common ones."""
    frame: Frame = field(default_factory=Frame)

    @property
    def status(self) -> Status:
        return overall_status(self.results)

    @property
    def shown_notes(self) -> tuple[str, ...]:
        """Every line the terminal shows after the tables: the frame's around the command's own."""
        return (*self.frame.first, *self.notes, *self.frame.last)

    def document(self) -> dict[str, object]:
        """The JSON every command writes: the common fields first, then the command's own."""
        return {
            "schema_version": SCHEMA_VERSION,
            "command": self.command,
            "status": str(self.status),
            "ok": self.status.passed,
            "results": [result.serialize() for result in self.results],
            **self.data,
            **self.frame.data,
        }


def overall_status(results: Iterable[Result]) -> Status:
    """ERROR over FAILED over OK: an item that could not be checked outweighs one that failed."""
    statuses = {result.status for result in results}
    for status in (Status.ERROR, Status.FAILED):
        if status in statuses:
            return status
    return Status.OK


def exit_code(results: Sequence[Result]) -> int:
    """0 every result passed; 1 a check failed; 2 an item could not be checked as given, or nothing was checked;
    3 a check could not run because the machine lacks something (and nothing was bad input)."""
    if not results:
        # A pass that checked nothing is not a pass.
        return EXIT_BAD_INPUT
    status = overall_status(results)
    if status is Status.ERROR:
        errors = [result for result in results if result.status is Status.ERROR]
        return EXIT_ENVIRONMENT if all(result.needs for result in errors) else EXIT_BAD_INPUT
    return EXIT_FAILED if status is Status.FAILED else EXIT_OK
