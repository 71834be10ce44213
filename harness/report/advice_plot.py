"""`advise --plot`: predicted wall against predicted peak per candidate, the budget as a line (needs matplotlib)."""

from __future__ import annotations

import io
from pathlib import Path

from harness.build.advice import Advice
from harness.files import write_output
from harness.human import memory_text


def plot_advice(advice: Advice, path: Path) -> None:
    """One point per candidate, one colour per (LTO, codegen units), labelled with its jobs; written atomically."""
    import matplotlib  # noqa: PLC0415  # only --plot needs it, and it is slow to import

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415

    figure, axes = pyplot.subplots(figsize=(9, 6), dpi=110)
    settings = sorted({c.setting for c in advice.candidates}, key=lambda s: (s[0], -s[1]))
    for index, setting in enumerate(settings):
        points = [c for c in advice.candidates if c.setting == setting]
        axes.scatter(
            [c.peak_bytes / 1e9 for c in points],
            [c.wall_seconds / 60 for c in points],
            color=f"C{index}",
            label=f"lto={setting[0]}, codegen-units={setting[1]}",
            marker="o",
        )
        for c in points:
            label = f"{c.jobs}{'*' if c.beyond_measured else ''}"
            axes.annotate(label, (c.peak_bytes / 1e9, c.wall_seconds / 60), textcoords="offset points", xytext=(4, 4))
    axes.axvline(advice.budget_bytes / 1e9, color="black", label=f"budget {memory_text(advice.budget_bytes)}")
    axes.axvline(
        advice.usable_bytes / 1e9,
        color="black",
        linestyle="--",
        label=f"less the {advice.margin_percent:g} % margin",
    )
    if advice.recommended is not None:
        best = advice.recommended
        axes.scatter([best.peak_bytes / 1e9], [best.wall_seconds / 60], s=200, facecolors="none", edgecolors="red")
    axes.set_xlabel("predicted peak memory (GB)")
    axes.set_ylabel("predicted wall time (minutes)")
    axes.set_title(f"mas-harness advise: {advice.ref}, {advice.target} (labels: jobs; * beyond the traced CPUs)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(
        buffer, format=path.suffix.lstrip(".").lower(), metadata={"Date": None} if path.suffix == ".svg" else None
    )
    pyplot.close(figure)
    write_output(path, buffer.getvalue())
