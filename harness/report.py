"""Reporting: results as data rendered as a terminal table or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from harness.compat import CompatResult
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
