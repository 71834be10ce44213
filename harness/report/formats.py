"""An Outcome as JSON, JUnit XML, Markdown and GitHub annotations: every command's results, one writer each."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from xml.etree import ElementTree

from harness.results import Outcome, Status, Table

VERDICT_WORDS = {Status.OK: "ok", Status.FAILED: "FAILED", Status.ERROR: "ERROR", Status.SKIPPED: "skipped"}
"""The one vocabulary every table, Markdown file and summary uses for a verdict."""


def json_text(outcome: Outcome) -> str:
    return json.dumps(outcome.document(), indent=2) + "\n"


def junit_xml(outcome: Outcome) -> bytes:
    """One test case per result (classname = its group), with its duration; a failure carries its detail."""
    results = outcome.results
    counts = {status: sum(1 for r in results if r.status is status) for status in Status}
    root = ElementTree.Element(
        "testsuites",
        name="mas-harness",
        tests=str(len(results)),
        failures=str(counts[Status.FAILED]),
        errors=str(counts[Status.ERROR]),
    )
    suite = ElementTree.SubElement(
        root,
        "testsuite",
        name=outcome.title,
        tests=str(len(results)),
        failures=str(counts[Status.FAILED]),
        errors=str(counts[Status.ERROR]),
        skipped=str(counts[Status.SKIPPED]),
        time=f"{sum(r.duration for r in results):.3f}",
    )
    for result in results:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=result.group or outcome.command,
            name=result.name,
            time=f"{result.duration:.3f}",
        )
        if result.location is not None:
            case.set("file", result.location.path)
            if result.location.line is not None:
                case.set("line", str(result.location.line))
        text = result.detail or result.reason
        if result.status is Status.FAILED:
            ElementTree.SubElement(case, "failure", message=result.reason).text = text
        elif result.status is Status.ERROR:
            ElementTree.SubElement(case, "error", message=result.reason).text = text
        elif result.status is Status.SKIPPED:
            ElementTree.SubElement(case, "skipped", message=result.reason)
        else:
            ElementTree.SubElement(case, "system-out").text = text
    ElementTree.indent(root)
    data: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_verdict(status: Status) -> str:
    word = VERDICT_WORDS[status]
    return word if status.passed else f"**{word}**"


def _table_markdown(table: Table) -> str:
    header = [column.header for column in table.columns] + (["verdict"] if table.has_verdict else [])
    rows = [
        [*row.cells, *([markdown_verdict(row.status) if row.status else ""] if table.has_verdict else [])]
        for row in table.rows
    ]
    return f"**{table.title}**\n\n" + markdown_table(header, rows)


def headline(outcome: Outcome) -> str:
    failing = [r for r in outcome.results if not r.passed]
    if not outcome.results:
        return "nothing was checked"
    return "all ok" if not failing else f"{len(failing)} of {len(outcome.results)} not ok"


def markdown(outcome: Outcome) -> str:
    """A title with the verdict, the command's tables, then each result that did not pass."""
    parts = [f"### {outcome.title}: {headline(outcome)}\n"]
    parts += [_table_markdown(table) for table in outcome.tables]
    failing = [r for r in outcome.results if not r.passed]
    if failing:
        parts.append(
            markdown_table(
                ("group", "check", "verdict", "where", "reason"),
                [(r.group, r.name, markdown_verdict(r.status), str(r.location or ""), r.reason) for r in failing],
            )
        )
    return "\n".join(parts)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(outcome: Outcome) -> str:
    """GitHub Actions workflow commands: an `::error` for each result that did not pass and points at a file."""
    lines = []
    for result in outcome.results:
        if result.passed or result.location is None:
            continue
        where = f"file={_escape_property(result.location.path)}"
        if result.location.line is not None:
            where += f",line={result.location.line}"
        title = _escape_property(f"{result.group} {result.name}".strip())
        lines.append(f"::error {where},title={title}::{_escape_data(result.reason)}")
    return "".join(line + "\n" for line in lines)
