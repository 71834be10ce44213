"""Reading the harness's TOML files (pins, series, a superproject's pyproject): one set of error messages.

Every key and table of these files means something; one that means nothing here is a
typo (`[[pni]]` for `[[pin]]`) that would otherwise make a check pass that checked
nothing, so it is an error, as are values of the wrong shape.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from harness.files import read_input


def read_toml(path: Path, what: str) -> dict[str, Any] | None:
    """The parsed file, or None when it does not exist; unreadable or invalid TOML is bad input."""
    data = read_input(path, what)
    if data is None:
        return None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadInput(f"{what} {path} is not UTF-8 text: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{what} {path} is not valid TOML: {exc}") from None


def require_toml(path: Path, what: str) -> dict[str, Any]:
    data = read_toml(path, what)
    if data is None:
        raise BadInput(f"{what} {path} does not exist")
    return data


def _shape(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return "an array of tables"
    return f"the {type(value).__name__} {value!r}"


def refuse_unknown(table: Mapping[str, object], known: Sequence[str], where: str) -> None:
    """A key `known` does not list is a typo or a setting of another version: refuse it, naming what is known."""
    for key, value in table.items():
        if key not in known:
            if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
                what = f"table [[{key}]]"
            elif isinstance(value, dict):
                what = f"table [{key}]"
            else:
                what = f"key `{key}`"
            raise BadInput(f"{where}: unknown {what} (known: {', '.join(known)}); is it a typo?")


def table_at(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise BadInput(f"{where} must be a table, not {_shape(value)}")
    return value


def tables_at(value: object, where: str) -> list[dict[str, object]]:
    """An array of tables (`[[name]]` blocks)."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadInput(f"{where} must be an array of tables (`[[...]]` blocks), not {_shape(value)}")
    return value


def string_at(table: Mapping[str, object], key: str, where: str) -> str | None:
    """The non-empty string at `key`, None when absent; any other value is refused."""
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise BadInput(f"{where}: `{key}` must be a non-empty string, not {_shape(value)}")
    return value
