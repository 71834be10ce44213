"""Reporting: results as data rendered as a terminal table or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from harness.compat import CompatResult, StaticResult
from harness.patching import HunkReport


def _hunk_cell(hunk: HunkReport) -> str:
    if hunk.status == "offset":
        return f"#{hunk.index} offset {hunk.offset:+d}"
    if hunk.status == "conflict":
        return f"#{hunk.index} conflict at line {hunk.mismatch_line}"
    return f"#{hunk.index} {hunk.status}"


def compat_table(results: Sequence[CompatResult]) -> Table:
    table = Table(title="Patch compatibility", show_lines=False)
    for column in ("ref", "upstream commit", "Dockerfile", "patch", "state", "expected", "hunks", "verdict"):
        table.add_column(column)
    for result in results:
        table.add_row(
            result.ref,
            result.upstream_commit[:12],
            result.dockerfile_blob[:12],
            result.patch,
            str(result.state),
            result.expected or "(no pin)",
            ", ".join(_hunk_cell(h) for h in result.hunks),
            "[green]ok[/green]" if result.ok else "[red]NOT OK[/red]",
        )
    return table


def print_compat(results: Sequence[CompatResult], console: Console) -> None:
    console.print(compat_table(results))
    for result in results:
        if not result.ok:
            console.print(f"[red]{result.ref}[/red]: {result.reason}", highlight=False, soft_wrap=True)
            for hunk in result.hunks:
                if hunk.status == "conflict":
                    console.print(f"  {hunk.describe()}", highlight=False, markup=False, soft_wrap=True)


def compat_json(results: Sequence[CompatResult]) -> str:
    return json.dumps([r.as_json() for r in results], indent=2)


def findings_table(results: Sequence[StaticResult]) -> Table:
    table = Table(title="Static checks of the patched Dockerfile")
    for column in ("ref", "check", "line", "verdict", "message"):
        table.add_column(column, overflow="fold")
    for result in results:
        for finding in result.findings:
            table.add_row(
                result.ref,
                finding.check,
                str(finding.line or ""),
                "[green]ok[/green]" if finding.ok else "[red]FAIL[/red]",
                finding.message,
            )
    return table


def static_json(results: Sequence[StaticResult]) -> str:
    return json.dumps(
        [{"ref": r.ref, "patch": r.patch, "ok": r.ok, "findings": [asdict(f) for f in r.findings]} for r in results],
        indent=2,
    )
