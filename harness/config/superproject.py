"""Superproject configuration: `[tool.mas-harness]` in the superproject's pyproject.toml, and the flags over it.

The users keep MAS as a git submodule with the patch beside it. Their repository
says where, once:

    [tool.mas-harness]
    submodule = "docker/chat/mas/repo"
    patch = "docker/chat/mas/patches/patch-dockerfile.patch"

Raw command-line input (`SuperprojectFlags`) is kept apart from the resolved
record (`SuperprojectConfig`); one resolver applies the precedence: a flag, then
the table. Paths in the table are relative to the directory of its pyproject.toml,
paths given as flags to the current directory. Unknown keys are errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.config.tomlfile import read_toml
from harness.errors import BadInput

PYPROJECT = "pyproject.toml"
TABLE = "tool.mas-harness"
KNOWN_KEYS = ("submodule", "patch", "upstream", "pins")
_EXAMPLE = 'submodule = "docker/chat/mas/repo", patch = "docker/chat/mas/patches/patch-dockerfile.patch"'


@dataclass(frozen=True, kw_only=True)
class SuperprojectFlags:
    """What the command line said; None where a flag was not given."""

    superproject: Path | None = None
    submodule: Path | None = None
    patch: Path | None = None
    upstream: str | None = None
    pins: Path | None = None

    @property
    def selects_mode(self) -> bool:
        # --patch, --upstream and --pins mean something in every mode; only these two ask for a superproject.
        return self.superproject is not None or self.submodule is not None


@dataclass(frozen=True, kw_only=True)
class SuperprojectConfig:
    root: Path
    """The superproject directory (where its pyproject.toml is), absolute."""
    submodule: str
    """The submodule's path relative to `root`, POSIX style, as git names it from there."""
    patch: Path
    upstream: str | None
    """Where refs come from when given; None means the submodule's own repository."""
    pins: Path | None
    """A pins file for the moved-tag check; None means the harness's default."""
    config_file: Path | None
    """The pyproject.toml that was read, when it has a [tool.mas-harness] table."""

    @property
    def work_tree(self) -> Path:
        return self.root / self.submodule


def read_table(pyproject: Path) -> dict[str, str] | None:
    """The validated [tool.mas-harness] table, or None when the file or the table is absent."""
    data = read_toml(pyproject, "superproject configuration")
    if data is None:
        return None
    tool = data.get("tool", {})
    table = tool.get("mas-harness") if isinstance(tool, dict) else None
    if table is None:
        return None
    where = f"{pyproject} [{TABLE}]"
    if not isinstance(table, dict):
        raise BadInput(f"{where} must be a table ({_EXAMPLE})")
    unknown = sorted(set(table) - set(KNOWN_KEYS))
    if unknown:
        raise BadInput(f"{where}: unknown key `{unknown[0]}` (known: {', '.join(KNOWN_KEYS)})")
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise BadInput(f"{where}: `{key}` must be a non-empty string")
    return dict(table)


def find_superproject(start: Path) -> tuple[Path, dict[str, str]] | None:
    """The nearest directory from `start` upward whose pyproject.toml has a [tool.mas-harness] table, and the table
    (read once: the run uses what was found)."""
    start = start.resolve()
    for directory in (start, *start.parents):
        table = read_table(directory / PYPROJECT)
        if table is not None:
            return directory, table
    return None


def _missing(key: str, flag: str, root: Path, table: dict[str, str] | None, found: bool) -> BadInput:
    pyproject = root / PYPROJECT
    if table is not None:
        return BadInput(f"{pyproject} [{TABLE}]: `{key}` is missing; set it or pass {flag}")
    if found:
        return BadInput(f"{pyproject} has no [{TABLE}] table; add one ({_EXAMPLE}) or pass --submodule and --patch")
    return BadInput(
        f"{root} has no {PYPROJECT}; add one with a [{TABLE}] table ({_EXAMPLE}) or pass --submodule and --patch"
    )


def _submodule_from_table(value: str, where: str) -> str:
    pure = PurePosixPath(value)
    if pure.is_absolute() or ".." in pure.parts or pure == PurePosixPath("."):
        raise BadInput(f"{where}: `submodule` must be a path inside the superproject, not {value!r}")
    return pure.as_posix()


def _submodule_from_flag(flag: Path, *, cwd: Path, root: Path) -> str:
    absolute = (cwd / flag).resolve()
    try:
        relative = absolute.relative_to(root)
    except ValueError:
        raise BadInput(f"--submodule {flag} is outside the superproject {root}") from None
    if relative == Path():
        raise BadInput(f"--submodule {flag} is the superproject itself, not a submodule in it")
    return relative.as_posix()


def _upstream_from_table(value: str, root: Path) -> str:
    # A relative path in the table means a path beside the pyproject.toml; anything else (a URL) is kept as written.
    return str(root / value) if not Path(value).is_absolute() and (root / value).exists() else value


def resolve_superproject(flags: SuperprojectFlags, *, cwd: Path, discover: bool = True) -> SuperprojectConfig | None:
    """Resolve superproject mode: a flag wins over the table.

    Without --superproject the superproject is discovered from `cwd` upward (when
    `discover`); with --submodule but no table anywhere it is `cwd` itself. None
    means superproject mode was neither asked for nor discovered.
    """
    cwd = cwd.resolve()
    table: dict[str, str] | None
    if flags.superproject is not None:
        root = (cwd / flags.superproject).resolve()
        if not root.is_dir():
            raise BadInput(f"--superproject {flags.superproject} is not a directory")
        table = read_table(root / PYPROJECT)
    else:
        discovered = find_superproject(cwd) if discover or flags.selects_mode else None
        if discovered is None and not flags.selects_mode:
            return None
        # Found nowhere, with --submodule: the superproject is `cwd`, whose pyproject.toml the walk read (no table).
        root, table = discovered or (cwd, None)
    pyproject = root / PYPROJECT
    where = f"{pyproject} [{TABLE}]"
    values = table or {}

    if flags.submodule is not None:
        submodule = _submodule_from_flag(flags.submodule, cwd=cwd, root=root)
    elif "submodule" in values:
        submodule = _submodule_from_table(values["submodule"], where)
    else:
        raise _missing("submodule", "--submodule", root, table, pyproject.is_file())

    if flags.patch is not None:
        patch = (cwd / flags.patch).resolve()
    elif "patch" in values:
        patch = root / values["patch"]
    else:
        raise _missing("patch", "--patch", root, table, pyproject.is_file())

    upstream = flags.upstream or (_upstream_from_table(values["upstream"], root) if "upstream" in values else None)
    pins = (cwd / flags.pins) if flags.pins is not None else (root / values["pins"] if "pins" in values else None)
    return SuperprojectConfig(
        root=root,
        submodule=submodule,
        patch=patch,
        upstream=upstream,
        pins=pins,
        config_file=pyproject if table is not None else None,
    )
