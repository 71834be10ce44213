"""The one way out for every command's Outcome: the files asked for, GitHub's step summary, the terminal.

Like nox's tasks, this is where results are printed and reported; `harness.results.exit_code`
then reduces them. The report files are written before anything is printed, so a closed
pipe on stdout (`mas-harness compat | head -1`) costs the terminal output, never the reports.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from harness.errors import BadInput
from harness.files import atomic_write
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

    def files(self) -> dict[str, Path]:
        named = {"--output": self.output, "--junit": self.junit, "--markdown": self.markdown}
        named[f"${STEP_SUMMARY}"] = self.step_summary
        return {what: path for what, path in named.items() if path is not None}


def _is_stream(path: Path) -> bool:
    """A character device or a named pipe (/dev/stdout, /dev/null, a FIFO): written into, never replaced."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def check_writable(sinks: Sinks) -> None:
    """Refuse, before any work, a report file that cannot be written (bad input, exit 2)."""
    seen: dict[Path, str] = {}
    for what, path in sinks.files().items():
        if path.is_dir():
            raise BadInput(f"{what} {path} is a directory; name a file")
        if path.exists() and not path.is_file() and not _is_stream(path):
            raise BadInput(f"{what} {path} is not a regular file; name a file")
        parent = path.parent if str(path.parent) else Path()
        if not parent.is_dir():
            raise BadInput(f"{what} {path}: {parent} is not a directory")
        if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise BadInput(f"{what} {path} cannot be written (permission denied)")
        same = seen.setdefault(path.resolve(), what)
        if same != what:
            raise BadInput(f"{same} and {what} both name {path}; give each report its own file")


def _utf8(text: str) -> bytes:
    # A path that is not UTF-8 (a checkout named under the C locale) is shown as the JSON report shows it: `\udce9`.
    return text.encode(errors="backslashreplace")


def _write(what: str, path: Path, data: bytes) -> None:
    try:
        if _is_stream(path):
            with path.open("wb") as handle:
                handle.write(data)
        else:
            atomic_write(path, data)
    except OSError as exc:
        # A full disk shows here, at write time, whatever was checked before.
        raise BadInput(f"{what} {path} cannot be written: {exc.strerror or exc}") from None


def _append(what: str, path: Path, text: str) -> None:
    try:
        with path.open("a", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(text + "\n")
    except OSError as exc:
        raise BadInput(f"{what} {path} cannot be written: {exc.strerror or exc}") from None


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
    if sinks.output is not None:
        _write("--output", sinks.output, json_text(outcome).encode())
    if sinks.junit is not None:
        _write("--junit", sinks.junit, junit_xml(outcome))
    text = markdown(outcome) if sinks.markdown is not None or sinks.step_summary is not None else ""
    if sinks.markdown is not None:
        _write("--markdown", sinks.markdown, _utf8(text))
    if sinks.step_summary is not None:
        _append(f"${STEP_SUMMARY}", sinks.step_summary, text)
    _show(outcome, sinks, console)
