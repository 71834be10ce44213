"""`advise`: the fastest build settings that fit a memory budget, predicted from build traces; no engine, no build
stack (only --plot needs matplotlib, from the `build` extra)."""

from __future__ import annotations

import os
from pathlib import Path

from harness.build.advice import advise_settings, load_shipped, traces_for_ref
from harness.build.trace import load_trace
from harness.cli.commands import BUILD_EXTRA
from harness.config.requests import AdviseRequest
from harness.errors import BadInput, EnvironmentProblem
from harness.human import parse_memory_size
from harness.knobs import MEMORY_MARGIN_PERCENT
from harness.report.advice_outcome import PLOT_FORMATS, advice_outcome
from harness.resources import traces_dir
from harness.results import Outcome


def _check_plot(plot: Path) -> None:
    """Before any work: a plot file the command can write, and the library to draw it."""
    if plot.suffix.lstrip(".").lower() not in PLOT_FORMATS:
        raise BadInput(f"--plot {plot}: name a .{', .'.join(PLOT_FORMATS)} file")
    if not plot.parent.is_dir():
        raise BadInput(f"--plot {plot}: {plot.parent} is not a directory")
    try:
        import matplotlib  # noqa: F401, PLC0415  # only to know it is there; the plot module loads it again
    except ModuleNotFoundError as exc:
        raise EnvironmentProblem(f"`advise --plot` needs {exc.name}, from the build extra: {BUILD_EXTRA}") from None


def advise(request: AdviseRequest) -> Outcome:
    budget = parse_memory_size(request.memory)
    margin = MEMORY_MARGIN_PERCENT if request.margin_percent is None else request.margin_percent
    cpus, ref, traces, plot = request.cpus, request.ref, request.traces, request.plot
    if plot is not None:
        _check_plot(plot)
    chosen = traces_for_ref([load_trace(path) for path in traces], ref) if traces else load_shipped(traces_dir(), ref)
    advice = advise_settings(
        chosen.traces,
        budget_bytes=budget,
        margin_percent=margin,
        cpus=cpus or os.cpu_count() or 1,
        borrowed=chosen.borrowed,
    )
    if plot is not None:
        from harness.report.advice_plot import plot_advice  # noqa: PLC0415  # matplotlib loads only here

        plot_advice(advice, plot)
    return advice_outcome(advice, choice_note=chosen.note)
