"""The pins: which upstream releases the patch is pinned to, and with which variant, read once into frozen records."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness import resources
from harness.config.profiles import Profile, configured_profiles
from harness.config.series import Series, load_series, single_patch_series
from harness.config.tomlfile import refuse_unknown, require_toml, string_at, table_at, tables_at
from harness.errors import BadInput

DEFAULT_UPSTREAM = "https://github.com/element-hq/matrix-authentication-service.git"

Expectation = Literal["applies", "conflict"]
_EXPECTATIONS: tuple[Expectation, ...] = ("applies", "conflict")


@dataclass(frozen=True, kw_only=True)
class Pin:
    """One upstream release as we last verified it."""

    tag: str
    upstream_commit: str
    dockerfile_blob: str
    patch: str
    """Path of the patch (the variant) for this tag, relative to the pins file; the series' choice for the tag."""
    expected: Expectation
    patched_blob: str | None = None
    """Blob id of the Dockerfile after the patch: a post-image lock."""


@dataclass(frozen=True, kw_only=True)
class Pins:
    upstream: str
    default_patch: str
    """The patch for a ref nothing else speaks for: the newest variant of the series (relative to the pins file)."""
    series: Series
    pins: tuple[Pin, ...]
    source: Path
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    """The knob profiles the pins file configures (`[profiles.NAME]`), beside the built-in ones."""

    def get(self, tag: str) -> Pin | None:
        return next((pin for pin in self.pins if pin.tag == tag), None)

    def by_dockerfile_blob(self, blob: str) -> list[Pin]:
        return [pin for pin in self.pins if blob in (pin.dockerfile_blob, pin.patched_blob)]

    def patch_path(self, relative: str) -> Path:
        return self.source.parent / relative


_TABLES = ("upstream", "pin", "profiles")
_UPSTREAM_KEYS = ("url", "series", "default_patch")
_PIN_KEYS = ("tag", "upstream_commit", "dockerfile_blob", "patch", "expected", "patched_blob")
_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _field(table: Mapping[str, object], key: str, where: str) -> str:
    value = string_at(table, key, where)
    if value is None:
        raise BadInput(f"{where}: `{key}` must be a non-empty string")
    return value


def _object_id(table: Mapping[str, object], key: str, where: str, *, required: bool = True) -> str | None:
    value = string_at(table, key, where) if not required else _field(table, key, where)
    if value is not None and not _OBJECT_ID.fullmatch(value):
        raise BadInput(f"{where}: `{key}` = {value!r} is not a full git object id (40 hex digits)")
    return value


def _pin(raw: dict[str, object], index: int, path: Path) -> Pin:
    where = f"{path.name} pin #{index + 1}"
    tag = _field(raw, "tag", where)
    where = f"{path.name} pin {tag}"
    refuse_unknown(raw, _PIN_KEYS, where)
    expected = _field(raw, "expected", where)
    if expected not in _EXPECTATIONS:
        raise BadInput(f"{where}: `expected` must be one of {', '.join(_EXPECTATIONS)}, not {expected!r}")
    patched_blob = _object_id(raw, "patched_blob", where, required=False)
    if expected == "applies" and not patched_blob:
        raise BadInput(f"{where}: a pin expected to apply needs `patched_blob` (the post-image lock)")
    return Pin(
        tag=tag,
        upstream_commit=_object_id(raw, "upstream_commit", where) or "",
        dockerfile_blob=_object_id(raw, "dockerfile_blob", where) or "",
        patch=_field(raw, "patch", where),
        expected=expected,
        patched_blob=patched_blob,
    )


def load_pins(path: Path | None = None) -> Pins:
    """The pins file at `path`, by default the one the harness ships."""
    path = path or resources.pins_file()
    data = require_toml(path, "pins file")
    refuse_unknown(data, _TABLES, path.name)
    upstream = table_at(data.get("upstream", {}), f"{path.name} [upstream]")
    refuse_unknown(upstream, _UPSTREAM_KEYS, f"{path.name} [upstream]")
    pins: list[Pin] = []
    seen: set[str] = set()
    for index, raw in enumerate(tables_at(data.get("pin", []), f"{path.name}: `pin`")):
        pin = _pin(raw, index, path)
        if pin.tag in seen:
            raise BadInput(f"{path.name} pin {pin.tag}: tag is pinned twice")
        seen.add(pin.tag)
        pins.append(pin)
    series = _series(upstream, path)
    for pin in pins:
        _require_series_choice(pin, series, path)
    return Pins(
        upstream=string_at(upstream, "url", f"{path.name} [upstream]") or DEFAULT_UPSTREAM,
        default_patch=shown_path(series.newest.patch, path.parent),
        series=series,
        pins=tuple(pins),
        source=path,
        profiles=configured_profiles(data, source=path.name),
    )


def newest_applying_pin(pins: Pins) -> str:
    """The last pin (the file is in release order) that its patch variant is expected to apply to."""
    for pin in reversed(pins.pins):
        if pin.expected == "applies":
            return pin.tag
    raise BadInput(f"{pins.source.name}: no pin is expected to apply")


def shown_path(patch: Path, base: Path) -> str:
    """`patch` relative to `base` where it lies under it (as given or resolved), else as given."""
    for candidate, root in ((patch, base), (patch.resolve(), base.resolve())):
        if candidate.is_relative_to(root):
            return str(candidate.relative_to(root))
    return str(patch)


def _series(upstream: Mapping[str, object], path: Path) -> Series:
    """The series file the pins name, or (older pins files) their one `default_patch` for every ref."""
    series_file = string_at(upstream, "series", f"{path.name} [upstream]")
    default_patch = string_at(upstream, "default_patch", f"{path.name} [upstream]")
    if series_file is not None and default_patch is not None:
        raise BadInput(f"{path.name} [upstream]: give `series` or `default_patch`, not both")
    if series_file is not None:
        return load_series(path.parent / series_file)
    return single_patch_series(path.parent / (default_patch or "patches/patch-dockerfile.patch"))


def _require_series_choice(pin: Pin, series: Series, path: Path) -> None:
    """A pin records the variant it takes; it must be the one the series gives its tag."""
    choice = series.choose(pin.tag)
    if (path.parent / pin.patch).resolve() != choice.variant.patch.resolve():
        source = series.source.name if series.source else "the series"
        raise BadInput(
            f"{path.name} pin {pin.tag}: patch is {pin.patch}, but {source} gives {pin.tag} the "
            f"{choice.variant.name} variant ({shown_path(choice.variant.patch, path.parent)}); make them agree"
        )
