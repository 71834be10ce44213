"""An Outcome on the terminal: its tables (as wide as the terminal or $COLUMNS allows), then its notes."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from harness.report.formats import VERDICT_WORDS
from harness.results import Column, Outcome, Status, Table

_STYLES = {Status.OK: "green", Status.FAILED: "bold red", Status.ERROR: "bold red", Status.SKIPPED: "yellow"}
# Cell padding and the border each column costs in rich's default box.
_COLUMN_OVERHEAD = 3


def verdict_text(status: Status) -> Text:
    return Text(VERDICT_WORDS[status], style=_STYLES[status])


def _natural_width(table: Table, index: int) -> int:
    cells = [table.columns[index].header, *(row.cells[index] for row in table.rows)]
    return max(len(line) for cell in cells for line in (cell.splitlines() or [""]))


def fitting_columns(table: Table, width: int) -> list[int]:
    """The columns to show: every one, less optional ones (the last first) while the table is wider than `width`."""
    shown = list(range(len(table.columns)))
    verdict = len("skipped") + _COLUMN_OVERHEAD if table.has_verdict else 0

    def total() -> int:
        return sum(_natural_width(table, i) + _COLUMN_OVERHEAD for i in shown) + verdict + 1

    for index in reversed(range(len(table.columns))):
        if total() <= width:
            break
        if table.columns[index].optional:
            shown.remove(index)
    return shown


def rich_table(table: Table, width: int) -> RichTable:
    shown = fitting_columns(table, width)
    rendered = RichTable(title=table.title, box=box.SIMPLE_HEAD, title_justify="left")
    columns: list[Column] = [table.columns[i] for i in shown]
    for column in columns:
        rendered.add_column(column.header, overflow="fold")
    if table.has_verdict:
        rendered.add_column("verdict", no_wrap=True)
    for row in table.rows:
        cells: list[Text | str] = [Text(row.cells[i]) for i in shown]
        if table.has_verdict:
            cells.append(verdict_text(row.status) if row.status is not None else "")
        rendered.add_row(*cells)
    return rendered


def render(outcome: Outcome, console: Console) -> None:
    for table in outcome.tables:
        console.print(rich_table(table, console.width))
    for note in outcome.shown_notes:
        console.print(note, markup=False, highlight=False, soft_wrap=True)
