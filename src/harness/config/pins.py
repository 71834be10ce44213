"""Configuration and pins: the lowest layer, read once into frozen records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness import resources
from harness.config.profiles import Profile, configured_profiles
from harness.config.series import Series, load_series, single_patch_series
from harness.config.tomlfile import require_toml
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


def _field(table: Mapping[str, object], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise BadInput(f"{where}: `{key}` must be a non-empty string")
    return value


def load_pins(path: Path | None = None) -> Pins:
    """The pins file at `path`, by default the one the harness ships."""
    path = path or resources.pins_file()
    data = require_toml(path, "pins file")

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
    series = _series(upstream, path)
    for pin in pins:
        _require_series_choice(pin, series, path)
    return Pins(
        upstream=upstream.get("url", DEFAULT_UPSTREAM),
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
    series_file = upstream.get("series")
    default_patch = upstream.get("default_patch")
    if series_file is not None and default_patch is not None:
        raise BadInput(f"{path.name} [upstream]: give `series` or `default_patch`, not both")
    if series_file is not None:
        if not isinstance(series_file, str) or not series_file:
            raise BadInput(f"{path.name} [upstream]: `series` must be a non-empty string")
        return load_series(path.parent / series_file)
    if default_patch is not None and (not isinstance(default_patch, str) or not default_patch):
        raise BadInput(f"{path.name} [upstream]: `default_patch` must be a non-empty string")
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


@dataclass(frozen=True, kw_only=True)
class SettingsFlags:
    """What the command line said; None where a flag was not given."""

    upstream: str | None = None
    cache_dir: Path | None = None
    pins_file: Path | None = None
    offline: bool = False
    no_cache: bool = False


def resolve_settings(flags: SettingsFlags, *, env: Mapping[str, str]) -> Settings:
    override = flags.pins_file or (Path(env["MAS_HARNESS_PINS"]) if env.get("MAS_HARNESS_PINS") else None)
    pins = load_pins(override)
    return Settings(
        upstream=flags.upstream or env.get("MAS_UPSTREAM") or pins.upstream,
        cache_dir=flags.cache_dir or default_cache_dir(env),
        pins=pins,
        offline=flags.offline,
        use_verdict_cache=not flags.no_cache,
    )
