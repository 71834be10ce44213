"""Figures as a person reads and writes them: memory in MB or GB, durations in minutes and seconds, sizes."""

from __future__ import annotations

import re

from harness.errors import BadInput


def memory_text(value: int | None) -> str:
    """Bytes as `95.7 MB` or `5.51 GB` (decimal units, as the reports compare them); `n/a` when unknown."""
    if value is None:
        return "n/a"
    return f"{value / 1e9:.2f} GB" if value >= 1e8 else f"{value / 1e6:.1f} MB"


def duration_text(seconds: float) -> str:
    """`29m19s`, or `45s` under a minute."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]?)(?P<suffix>i?B?)", re.IGNORECASE)
_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}


def parse_memory_size(text: str) -> int:
    """`16G`, `4GiB`, `512M`, `1.5g`, `17179869184` as bytes.

    K, M, G and T are binary (GiB and so on), as Docker's `--memory` and `free -g` read them; KB, MB,
    GB and TB with a B are decimal, as a datasheet writes them. Anything else is bad input.
    """
    found = _SIZE.fullmatch(text.strip())
    if found is None or float(found["number"]) <= 0:
        raise BadInput(f"{text!r} is not a memory size: write it as 16G, 4GiB, 512M or a number of bytes")
    unit, suffix = found["unit"].upper(), found["suffix"].lower()
    if not unit and suffix:
        raise BadInput(f"{text!r} is not a memory size: write it as 16G, 4GiB, 512M or a number of bytes")
    multiplier: int = (1000 if suffix == "b" else 1024) ** _POWERS[unit]
    return round(float(found["number"]) * multiplier)


def binary_size_text(value: int) -> str:
    """Bytes as `16 GiB` or `1.5 GiB`, the way a memory limit is usually written."""
    for unit, power in (("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        if value >= 1024**power:
            return f"{value / 1024**power:.4g} {unit}"
    return f"{value} B"
