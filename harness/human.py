"""Figures as a person reads them: memory in MB or GB, durations in minutes and seconds."""

from __future__ import annotations


def memory_text(value: int | None) -> str:
    """Bytes as `95.7 MB` or `5.51 GB` (decimal units, as the reports compare them); `n/a` when unknown."""
    if value is None:
        return "n/a"
    return f"{value / 1e9:.2f} GB" if value >= 1e8 else f"{value / 1e6:.1f} MB"


def duration_text(seconds: float) -> str:
    """`29m19s`, or `45s` under a minute."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"
