"""The record of a run: the pins, the cache directory, the upstream and the superproject, resolved once at the
command line's edge from the flags, the environment, the pins file and `[tool.mas-harness]`, and passed whole.

A command resolves only what it uses: `status`, `apply` and `revert` take the pins alone (`resolve_pins`) and the
journal directory (`default_journal_dir`), never a cache directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.config.pins import Pins, load_pins
from harness.config.superproject import SuperprojectConfig
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
class Run:
    """One run, resolved; precedence: command-line flag, then environment, then the pins file; in a superproject,
    its `[tool.mas-harness]` table (under the flags) says the upstream and the pins."""

    pins: Pins
    cache_dir: Path
    """Where the checkout cache and the stored verdicts live."""
    upstream: str | None
    """Where refs come from: --upstream, $MAS_UPSTREAM, the pins file; in a superproject, its table's `upstream`,
    or None: the submodule's own repository, then its remote (harness.upstream.submodule decides)."""
    superproject: SuperprojectConfig | None = None
    """The superproject and its submodule when the run is in one."""
    offline: bool = False
    """Use only what the cache holds: refs are not looked up upstream again."""
    reuse_verdicts: bool = True
    """Reuse stored static-check verdicts (off: `--no-cache`)."""
    unconfined: bool = False
    """Run upstream's build script on the host where it cannot be confined (`--unconfined`)."""

    def in_superproject(self) -> SuperprojectConfig:
        """The superproject of a run the command line's edge resolved in one (verify, compat --bump-to)."""
        if self.superproject is None:
            raise ValueError("this run is not in a superproject")
        return self.superproject

    def pins_upstream(self) -> str:
        """The upstream of a run outside a superproject (where one is always resolved)."""
        if self.upstream is None:
            raise ValueError("a superproject's upstream is opened through its submodule")
        return self.upstream


@dataclass(frozen=True, kw_only=True)
class RunFlags:
    """What the command line said; None where a flag was not given."""

    upstream: str | None = None
    cache_dir: Path | None = None
    pins_file: Path | None = None
    offline: bool = False
    no_cache: bool = False
    unconfined: bool = False


def usable_cache_dir(path: Path, *, named_by: str) -> Path:
    """`path` when it is a directory, or can become one (its nearest existing ancestor is a writable directory)."""
    dangling = next((c for c in (path, *path.parents) if c.is_symlink() and not c.exists()), None)
    if dangling is not None:
        # Not made for you: the link says where the cache lives (a disk not mounted now, say).
        raise BadInput(
            f"cache directory {path} (from {named_by}) cannot be made: {dangling} is a symbolic link to "
            f"{dangling.readlink()}, which does not exist; create it, or name another cache directory"
        )
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


def resolve_pins(
    pins_file: Path | None, *, env: Mapping[str, str], superproject: SuperprojectConfig | None = None
) -> Pins:
    """A superproject's `pins` (already under its --pins), else --pins, else $MAS_HARNESS_PINS, else the
    harness's own."""
    chosen = superproject.pins if superproject is not None and superproject.pins else pins_file
    return load_pins(chosen or (Path(env["MAS_HARNESS_PINS"]) if env.get("MAS_HARNESS_PINS") else None))


def resolve_run(flags: RunFlags, *, env: Mapping[str, str], superproject: SuperprojectConfig | None = None) -> Run:
    """The run's record. In a superproject its table's `upstream` and `pins` (each already under its flag) apply."""
    pins = resolve_pins(flags.pins_file, env=env, superproject=superproject)
    if flags.cache_dir is not None:
        cache_dir = usable_cache_dir(flags.cache_dir, named_by="--cache-dir")
    else:
        cache_dir = usable_cache_dir(default_cache_dir(env), named_by="MAS_HARNESS_CACHE or the XDG cache directory")
    if superproject is not None:
        upstream = superproject.upstream
    else:
        upstream = flags.upstream or env.get("MAS_UPSTREAM") or pins.upstream
    return Run(
        pins=pins,
        cache_dir=cache_dir,
        upstream=upstream,
        superproject=superproject,
        offline=flags.offline,
        reuse_verdicts=not flags.no_cache,
        unconfined=flags.unconfined,
    )
