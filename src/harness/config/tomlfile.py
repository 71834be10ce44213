"""Reading the harness's TOML files (pins, series, a superproject's pyproject): one set of error messages."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from harness.errors import BadInput


def read_toml(path: Path, what: str) -> dict[str, Any] | None:
    """The parsed file, or None when it does not exist; unreadable or invalid TOML is bad input."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{what} {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{what} {path} is not valid TOML: {exc}") from None


def require_toml(path: Path, what: str) -> dict[str, Any]:
    data = read_toml(path, what)
    if data is None:
        raise BadInput(f"{what} {path} does not exist")
    return data
