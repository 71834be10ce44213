"""Configuration and pins: the lowest layer, read once into frozen records."""

from __future__ import annotations

import os
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


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """The checkout cache survives runs: MAS_HARNESS_CACHE, else the XDG cache directory."""
    if env.get("MAS_HARNESS_CACHE"):
        return Path(env["MAS_HARNESS_CACHE"]).expanduser()
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path(env.get("HOME", "~")) / ".cache"
    return base.expanduser() / "mas-harness"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Resolved settings; precedence: command-line flag, then environment, then the pins file."""

    upstream: str
    cache_dir: Path
    pins: Pins
    offline: bool = False
    """Use only what the cache holds: refs are not looked up upstream again."""
    use_verdict_cache: bool = True
    """Reuse stored static-check verdicts (off: `--no-cache`)."""
    unconfined: bool = False
    """Run upstream's build script on the host where it cannot be confined (`--unconfined`)."""


@dataclass(frozen=True, kw_only=True)
class SettingsFlags:
    """What the command line said; None where a flag was not given."""

    upstream: str | None = None
    cache_dir: Path | None = None
    pins_file: Path | None = None
    offline: bool = False
    no_cache: bool = False
    unconfined: bool = False


def usable_cache_dir(path: Path, *, named_by: str) -> Path:
    """`path` when it is a directory, or can become one (its nearest existing ancestor is a writable directory)."""
    existing = next((candidate for candidate in (path, *path.parents) if candidate.exists()), None)
    if existing is None:
        return path
    if existing == path and not path.is_dir():
        raise BadInput(f"cache directory {path} (from {named_by}) is a file, not a directory; name a directory")
    if not existing.is_dir():
        raise BadInput(f"cache directory {path} (from {named_by}) cannot be made: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadInput(f"cache directory {path} (from {named_by}) cannot be written: {existing} is not writable")
    return path


def resolve_settings(flags: SettingsFlags, *, env: Mapping[str, str]) -> Settings:
    override = flags.pins_file or (Path(env["MAS_HARNESS_PINS"]) if env.get("MAS_HARNESS_PINS") else None)
    pins = load_pins(override)
    if flags.cache_dir is not None:
        cache_dir = usable_cache_dir(flags.cache_dir, named_by="--cache-dir")
    else:
        cache_dir = usable_cache_dir(default_cache_dir(env), named_by="MAS_HARNESS_CACHE or the XDG cache directory")
    return Settings(
        upstream=flags.upstream or env.get("MAS_UPSTREAM") or pins.upstream,
        cache_dir=cache_dir,
        pins=pins,
        offline=flags.offline,
        use_verdict_cache=not flags.no_cache,
        unconfined=flags.unconfined,
    )
