"""Configuration and pins: the lowest layer, read once into frozen records."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.errors import BadInput

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PINS_FILE = PROJECT_ROOT / "pins.toml"
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
    """Path of the patch for this tag, relative to the project root."""
    expected: Expectation
    patched_blob: str | None = None
    """Blob id of the Dockerfile after the patch: a post-image lock."""


@dataclass(frozen=True, kw_only=True)
class Pins:
    upstream: str
    default_patch: str
    pins: tuple[Pin, ...]
    source: Path

    def get(self, tag: str) -> Pin | None:
        return next((pin for pin in self.pins if pin.tag == tag), None)

    def by_dockerfile_blob(self, blob: str) -> list[Pin]:
        return [pin for pin in self.pins if blob in (pin.dockerfile_blob, pin.patched_blob)]

    def patch_path(self, relative: str) -> Path:
        return self.source.parent / relative


def _field(table: Mapping[str, object], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise BadInput(f"{where}: `{key}` must be a non-empty string")
    return value


def load_pins(path: Path = DEFAULT_PINS_FILE) -> Pins:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"pins file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"pins file {path} is not valid TOML: {exc}") from None

    upstream = data.get("upstream", {})
    pins: list[Pin] = []
    seen: set[str] = set()
    for index, raw in enumerate(data.get("pin", [])):
        where = f"{path.name} pin #{index + 1}"
        tag = _field(raw, "tag", where)
        where = f"{path.name} pin {tag}"
        if tag in seen:
            raise BadInput(f"{where}: tag is pinned twice")
        seen.add(tag)
        expected = _field(raw, "expected", where)
        if expected not in _EXPECTATIONS:
            raise BadInput(f"{where}: `expected` must be one of {', '.join(_EXPECTATIONS)}, not {expected!r}")
        patched_blob = raw.get("patched_blob")
        if expected == "applies" and not patched_blob:
            raise BadInput(f"{where}: a pin expected to apply needs `patched_blob` (the post-image lock)")
        pins.append(
            Pin(
                tag=tag,
                upstream_commit=_field(raw, "upstream_commit", where),
                dockerfile_blob=_field(raw, "dockerfile_blob", where),
                patch=_field(raw, "patch", where),
                expected=expected,
                patched_blob=patched_blob,
            )
        )
    return Pins(
        upstream=upstream.get("url", DEFAULT_UPSTREAM),
        default_patch=upstream.get("default_patch", "patches/patch-dockerfile.patch"),
        pins=tuple(pins),
        source=path,
    )


def newest_applying_pin(pins: Pins) -> str:
    """The last pin (the file is in release order) that the main patch is expected to apply to."""
    for pin in reversed(pins.pins):
        if pin.expected == "applies" and pin.patch == pins.default_patch:
            return pin.tag
    raise BadInput(f"{pins.source.name}: no pin that {pins.default_patch} is expected to apply to")


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


def resolve_settings(
    *,
    upstream: str | None,
    cache_dir: Path | None,
    pins_file: Path | None,
    env: Mapping[str, str],
) -> Settings:
    pins = load_pins(pins_file or Path(env.get("MAS_HARNESS_PINS") or DEFAULT_PINS_FILE))
    return Settings(
        upstream=upstream or env.get("MAS_UPSTREAM") or pins.upstream,
        cache_dir=cache_dir or default_cache_dir(env),
        pins=pins,
    )
