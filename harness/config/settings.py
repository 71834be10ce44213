"""The settings of a run: the pins, the upstream and the cache directory, resolved once from the flags, the
environment and the pins file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.config.pins import Pins, load_pins
from harness.errors import BadInput

APP_DIR = "mas-harness"
"""The harness's directory in each XDG base directory."""
JOURNALS_DIR = "journals"
"""Under the XDG state directory: the journals of checkouts that are not git work trees."""


def _xdg_base(env: Mapping[str, str], variable: str, fallback: str) -> Path:
    """An XDG base directory: the variable when it is an absolute path, else `fallback` under the home directory.

    The XDG Base Directory specification says a relative value is invalid and must be ignored: honouring it
    would put the harness's files wherever the current directory is, a user's repository say.
    """
    value = env.get(variable, "")
    if value and Path(value).is_absolute():
        return Path(value)
    return Path(env.get("HOME", "~")).expanduser() / fallback


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """The checkout cache survives runs: MAS_HARNESS_CACHE, else the XDG cache directory."""
    if env.get("MAS_HARNESS_CACHE"):
        return Path(env["MAS_HARNESS_CACHE"]).expanduser()
    return _xdg_base(env, "XDG_CACHE_HOME", ".cache") / APP_DIR


def default_journal_dir(env: Mapping[str, str]) -> Path:
    """Where an apply or revert of a checkout that is not a git work tree keeps its journal: the XDG state
    directory, which no upstream commit or tarball can ship a file into (a file in the checkout it can)."""
    return _xdg_base(env, "XDG_STATE_HOME", ".local/state") / APP_DIR / JOURNALS_DIR


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
    journal_dir: Path | None = None
    """Where the journal of a checkout that is not a git work tree goes (None: such a checkout is refused)."""


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
        journal_dir=default_journal_dir(env),
    )
