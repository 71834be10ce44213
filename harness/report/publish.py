"""The one way out for every command's Outcome: the files asked for, GitHub's step summary, the terminal.

Like nox's tasks, this is where results are printed and reported; `harness.results.exit_code`
then reduces them. The report files are written before anything is printed, so a closed
pipe on stdout (`mas-harness compat | head -1`) costs the terminal output, never the reports.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from harness.errors import BadInput
from harness.files import write_output
from harness.report.destinations import Destination, RunPaths, refuse_unsafe_destinations
from harness.report.formats import github_annotations, json_text, junit_xml, markdown
from harness.report.render import render
from harness.results import Outcome

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True, kw_only=True)
class Sinks:
    """Where an Outcome goes besides the terminal."""

    json_stdout: bool = False
    """Print the JSON document instead of the tables."""
    output: Path | None = None
    """A JSON file."""
    junit: Path | None = None
    markdown: Path | None = None
    step_summary: Path | None = None
    """GitHub's $GITHUB_STEP_SUMMARY: the Markdown is appended to it."""
    annotations: bool = False
    """Print GitHub Actions `::error file=...,line=...::` lines for failed results that point at a file."""

    @classmethod
    def from_environment(cls, env: Mapping[str, str], **given: object) -> Sinks:
        summary = env.get(STEP_SUMMARY)
        return cls(step_summary=Path(summary) if summary else None, **given)  # type: ignore[arg-type]

    tables_to_stderr: bool = False
    """A report goes to standard output (`-`): the tables go to standard error."""

    def files(self) -> dict[str, Path]:
        named = {"--output": self.output, "--junit": self.junit, "--markdown": self.markdown}
        named[f"${STEP_SUMMARY}"] = self.step_summary
        return {what: path for what, path in named.items() if path is not None}

    def destinations(self) -> tuple[Destination, ...]:
        return tuple(Destination(flag=what, path=path) for what, path in self.files().items())


REPORT_NAMES = {"--output": "JSON report", "--junit": "JUnit report", "--markdown": "Markdown report"}
REPORT_NAMES[f"${STEP_SUMMARY}"] = "step summary"


def _utf8(text: str) -> bytes:
    # A path that is not UTF-8 (a checkout named under the C locale) is shown as the JSON report shows it: `\udce9`.
    return text.encode(errors="backslashreplace")


def check_writable(sinks: Sinks, paths: RunPaths | None = None) -> None:
    """Refuse, before any work, a report file that cannot be written or would replace what is not a report."""
    refuse_unsafe_destinations(paths or RunPaths(destinations=sinks.destinations(), json_stdout=sinks.json_stdout))


def what_was_done(outcome: Outcome) -> str:
    """What the run did, for a message about a report that could not be written after it: never "nothing"."""
    written = outcome.data.get("output") if outcome.command in ("patch", "refresh") else None
    if written:
        return f"wrote {written}"
    if outcome.command in ("apply", "revert") and len(outcome.results) == 1 and outcome.results[0].passed:
        return outcome.results[0].reason
    return f"{outcome.command} ran ({outcome.status})"


class _Writes:
    """The report files of one publish, written in order; a failure says what the run did and what was written."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.done: list[str] = []

    def failed(self, what: str, path: Path, exc: OSError) -> BadInput:
        # A full disk shows here, at write time, whatever was checked before.
        wrote = "".join(f"; wrote {done}" for done in self.done)
        return BadInput(
            f"{what_was_done(self.outcome)}{wrote}; the {REPORT_NAMES.get(what, 'report')} could not be written "
            f"({what} {path}): {exc.strerror or exc}"
        )

    def write(self, what: str, path: Path, data: bytes) -> None:
        try:
            write_output(path, data)
        except OSError as exc:
            raise self.failed(what, path, exc) from None
        self.done.append(f"{what} {path}")

    def append(self, what: str, path: Path, text: str) -> None:
        try:
            with path.open("a", encoding="utf-8", errors="backslashreplace") as handle:
                handle.write(text + "\n")
        except OSError as exc:
            raise self.failed(what, path, exc) from None
        self.done.append(f"{what} {path}")


def _show(outcome: Outcome, sinks: Sinks, console: Console) -> None:
    try:
        if sinks.annotations:
            sys.stdout.write(github_annotations(outcome))
        if sinks.json_stdout:
            sys.stdout.write(json_text(outcome))
            sys.stdout.flush()
        else:
            render(outcome, console)
    except BrokenPipeError:
        raise  # the reader went away: the command line knows what to do
    except OSError as exc:
        # What could not be written stays buffered: send it where the final flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise BadInput(f"cannot write to standard output: {exc.strerror or exc}") from None


def publish(outcome: Outcome, sinks: Sinks, console: Console) -> None:
    """Write the report files asked for, then show the Outcome (tables, or the JSON with `json_stdout`)."""
    writes = _Writes(outcome)
    if sinks.output is not None:
        writes.write("--output", sinks.output, json_text(outcome).encode())
    if sinks.junit is not None:
        writes.write("--junit", sinks.junit, junit_xml(outcome))
    text = markdown(outcome) if sinks.markdown is not None or sinks.step_summary is not None else ""
    if sinks.markdown is not None:
        writes.write("--markdown", sinks.markdown, _utf8(text))
    if sinks.step_summary is not None:
        writes.append(f"${STEP_SUMMARY}", sinks.step_summary, text)
    # A report on standard output (`--junit -`) keeps it to itself: the tables go to standard error.
    _show(outcome, sinks, Console(stderr=True, highlight=False) if sinks.tables_to_stderr else console)
