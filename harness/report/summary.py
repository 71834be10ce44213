"""One table of what a session ran: pytest's JUnit files by test tier, the harness's own JSON reports.

A part that was asked for and is missing fails, so a step that crashed before writing its
report cannot pass; a part that ran nothing fails too, as pytest's exit 5 does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from harness.errors import BadInput
from harness.files import MAX_REPORT_BYTES, read_input
from harness.results import Column, Outcome, Result, Row, Status, Table


@dataclass(frozen=True, kw_only=True)
class Part:
    name: str
    passed: int
    failed: int
    skipped: int
    missing: bool = False
    failures: tuple[str, ...] = ()
    """Each failed test as `path::name: first line of its message`, so a CI log that keeps only the end names it."""

    @property
    def status(self) -> Status:
        return Status.OK if self.failed == 0 and self.passed > 0 and not self.missing else Status.FAILED


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _read_report(path: Path) -> bytes:
    data = read_input(path, "report", limit=MAX_REPORT_BYTES)
    if data is None:
        raise BadInput(f"report {path} does not exist")
    return data


def junit_tiers(path: Path) -> list[Part]:
    """Per test tier (tests/unit, tests/integration, ...) from a pytest JUnit XML file."""
    counts: dict[str, list[int]] = {}
    failures: dict[str, list[str]] = {}
    try:
        root = ElementTree.fromstring(_read_report(path))
        for case in root.iter("testcase"):
            parts = (case.get("classname") or "").split(".")
            tier = parts[1] if len(parts) > 1 and parts[0] == "tests" else "other"
            slot = counts.setdefault(tier, [0, 0, 0])
            failure = case.find("failure")
            if failure is None:
                failure = case.find("error")
            if failure is not None:
                slot[1] += 1
                failures.setdefault(tier, []).append(_failed_test(case, failure))
            elif case.find("skipped") is not None:
                slot[2] += 1
            else:
                slot[0] += 1
    # An unknown encoding is a LookupError; absurd nesting, a RecursionError.
    except (ElementTree.ParseError, OSError, ValueError, LookupError, RecursionError) as exc:
        raise BadInput(f"{path} is not a JUnit XML file: {_one_line(exc)}") from None
    return [
        Part(name=f"{tier} tests", passed=p, failed=f, skipped=s, failures=tuple(failures.get(tier, ())))
        for tier, (p, f, s) in sorted(counts.items())
    ]


def _failed_test(case: ElementTree.Element, failure: ElementTree.Element) -> str:
    module = (case.get("classname") or "").replace(".", "/")
    message = (failure.get("message") or failure.text or "").strip().splitlines()
    return f"{module}.py::{case.get('name')}: {message[0] if message else failure.tag}"


def json_part(path: Path, name: str) -> Part:
    """A JSON report the harness wrote: a command's document (its results), or a profile.json (its profiles)."""
    try:
        data = json.loads(_read_report(path))
    except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadInput(f"{path} is not a JSON report of the harness: {_one_line(exc)}") from None
    if isinstance(data, dict) and "schema_version" in data and isinstance(data.get("results"), list):
        statuses = [
            Result.deserialize(entry, where=str(path)).status for entry in data["results"] if isinstance(entry, dict)
        ]
        return Part(
            name=name,
            passed=statuses.count(Status.OK),
            failed=statuses.count(Status.FAILED) + statuses.count(Status.ERROR),
            skipped=statuses.count(Status.SKIPPED),
        )
    if isinstance(data, dict) and isinstance(data.get("profiles"), list):
        oks = [bool(entry.get("ok")) for entry in data["profiles"] if isinstance(entry, dict)]
        return Part(name=name, passed=oks.count(True), failed=oks.count(False), skipped=0)
    raise BadInput(f"{path} is not a JSON report of the harness (no `schema_version` and `results`, no `profiles`)")


def summarize(
    reports: Path,
    *,
    pytest_files: Sequence[str] = (),
    json_reports: Sequence[str] = (),
    profile_reports: Sequence[str] = (),
) -> Outcome:
    """The parts named, relative to `reports`."""
    parts: list[Part] = []
    for name in pytest_files:
        path = reports / name
        if path.is_file():
            # A test run that collected nothing is a failed part, as pytest's exit 5 is.
            parts += junit_tiers(path) or [Part(name=f"{name}: no test ran", passed=0, failed=0, skipped=0)]
        else:
            parts.append(Part(name=f"{name} (missing)", passed=0, failed=0, skipped=0, missing=True))
    for name, kind in [*((n, "results") for n in json_reports), *((n, "profiles") for n in profile_reports)]:
        path = reports / name
        label = f"{Path(name).parent.name or Path(name).stem} ({kind})"
        if path.is_file():
            parts.append(json_part(path, label))
        else:
            parts.append(Part(name=f"{label}: {path} missing", passed=0, failed=0, skipped=0, missing=True))
    results = tuple(
        Result(
            name=part.name,
            status=part.status,
            reason="missing: the step did not write it"
            if part.missing
            else f"{part.passed} passed, {part.failed} failed, {part.skipped} skipped",
            group="summary",
        )
        for part in parts
    )
    table = Table(
        title="mas-harness summary",
        columns=(Column(header="part"), Column(header="passed"), Column(header="failed"), Column(header="skipped")),
        rows=tuple(Row(cells=(p.name, str(p.passed), str(p.failed), str(p.skipped)), status=p.status) for p in parts),
    )
    return Outcome(
        command="summary",
        title="mas-harness summary",
        results=results,
        tables=(table,),
        notes=tuple(f"failed: {failure}" for part in parts for failure in part.failures),
        data={"parts": [{**vars(p), "failures": list(p.failures), "status": str(p.status)} for p in parts]},
    )
