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

A superproject may keep a series of patches instead of one, applied in order: `patches = ["a.patch",
"b.patch"]`, or `series = "docker/chat/mas/patches/series"`, a file naming one patch a line as quilt and
dpkg read it (`#` starts a comment; names are relative to the series file's directory). Exactly one of
`patch`, `patches` and `series` is given; `--patch` stands for the whole series with one patch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.config.tomlfile import read_toml
from harness.errors import BadInput
from harness.files import read_input

PYPROJECT = "pyproject.toml"
TABLE = "tool.mas-harness"
PATCH_KEYS = ("patch", "patches", "series")
"""The keys that say which patches the submodule takes; a table gives one of them."""
KNOWN_KEYS = ("submodule", *PATCH_KEYS, "upstream", "pins")
_LIST_KEYS = ("patches",)
"""The keys whose value is a list of strings; every other key's is a string."""
_EXAMPLE = 'submodule = "docker/chat/mas/repo", patch = "docker/chat/mas/patches/patch-dockerfile.patch"'
# A series file's comment starts at a `#` that begins the line or follows white space, as quilt reads it.
_SERIES_COMMENT = re.compile(r"(^|\s)#.*$")
_SERIES_STRIP_OPTION = "-p1"
"""The one option a series line may carry: the strip level git apply uses anyway."""

TableValue = str | tuple[str, ...]
Table = Mapping[str, TableValue]


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
    patches: tuple[Path, ...]
    """The patches in the order they apply, each to the tree the ones before it leave; never empty."""
    upstream: str | None
    """Where refs come from when given; None means the submodule's own repository."""
    pins: Path | None
    """A pins file for the moved-tag check; None means the harness's default."""
    config_file: Path | None
    """The pyproject.toml that was read, when it has a [tool.mas-harness] table."""
    series_file: Path | None = None
    """The series file the patches were read from, when the table names one."""

    @property
    def work_tree(self) -> Path:
        return self.root / self.submodule

    @property
    def is_series(self) -> bool:
        return len(self.patches) > 1


def read_table(pyproject: Path) -> dict[str, TableValue] | None:
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
    checked: dict[str, TableValue] = {}
    for key, value in table.items():
        if key in _LIST_KEYS:
            if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
                raise BadInput(f"{where}: `{key}` must be a list of non-empty strings")
            checked[key] = tuple(value)
        elif not isinstance(value, str) or not value.strip():
            raise BadInput(f"{where}: `{key}` must be a non-empty string")
        else:
            checked[key] = value
    given = [key for key in PATCH_KEYS if key in checked]
    if len(given) > 1:
        raise BadInput(f"{where}: `{given[0]}` and `{given[1]}` both say which patches to apply; keep one")
    if checked.get("patches") == ():
        raise BadInput(f"{where}: `patches` is empty; name at least one patch")
    return checked


def find_superproject(start: Path) -> tuple[Path, dict[str, TableValue]] | None:
    """The nearest directory from `start` upward whose pyproject.toml has a [tool.mas-harness] table, and the table
    (read once: the run uses what was found)."""
    start = start.resolve()
    for directory in (start, *start.parents):
        table = read_table(directory / PYPROJECT)
        if table is not None:
            return directory, table
    return None


def _missing(key: str, flag: str, root: Path, table: Table | None, found: bool) -> BadInput:
    pyproject = root / PYPROJECT
    if table is not None:
        hint = " (a series of patches: `patches` or `series`)" if key == "patch" else ""
        return BadInput(f"{pyproject} [{TABLE}]: `{key}` is missing; set it or pass {flag}{hint}")
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


def read_series(path: Path) -> tuple[Path, ...]:
    """The patches a series file names, in order, each relative to the file's directory (as quilt reads it)."""
    data = read_input(path, "series file")
    if data is None:
        raise BadInput(f"series file {path} does not exist")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"series file {path} is not UTF-8 text") from None
    names = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = _SERIES_COMMENT.sub("", line).split()
        if not fields:
            continue
        if any(option != _SERIES_STRIP_OPTION for option in fields[1:]):
            raise BadInput(
                f"series file {path} line {number}: `{' '.join(fields[1:])}` after {fields[0]}: the harness applies "
                f"each patch as git apply does (`{_SERIES_STRIP_OPTION}`) and takes no other option"
            )
        names.append(fields[0])
    if not names:
        raise BadInput(f"series file {path} names no patch")
    return tuple(path.parent / name for name in names)


def _without_repeats(patches: Sequence[Path], where: str) -> tuple[Path, ...]:
    seen: dict[Path, Path] = {}
    for patch in patches:
        # The same file under two spellings (`a.patch`, `./a.patch`) is the same patch twice.
        real = patch.resolve()
        if real in seen:
            raise BadInput(f"{where}: {patch} is named twice; a series applies each patch once")
        seen[real] = patch
    return tuple(patches)


def _patches_from_table(values: Table, root: Path, where: str) -> tuple[tuple[Path, ...], Path | None]:
    """The table's patches in order, and the series file they came from (if any)."""
    patch, patches, series = (values.get(key) for key in PATCH_KEYS)
    if isinstance(patch, str):
        return (root / patch,), None
    if isinstance(patches, tuple):
        return _without_repeats([root / name for name in patches], f"{where} `patches`"), None
    assert isinstance(series, str)
    series_file = root / series
    return _without_repeats(read_series(series_file), f"series file {series_file}"), series_file


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
    table: dict[str, TableValue] | None
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
    values: Table = table or {}
    strings = {key: value for key, value in values.items() if isinstance(value, str)}

    if flags.submodule is not None:
        submodule = _submodule_from_flag(flags.submodule, cwd=cwd, root=root)
    elif "submodule" in strings:
        submodule = _submodule_from_table(strings["submodule"], where)
    else:
        raise _missing("submodule", "--submodule", root, table, pyproject.is_file())

    series_file: Path | None = None
    if flags.patch is not None:
        patches: tuple[Path, ...] = ((cwd / flags.patch).resolve(),)
    elif any(key in values for key in PATCH_KEYS):
        patches, series_file = _patches_from_table(values, root, where)
    else:
        raise _missing("patch", "--patch", root, table, pyproject.is_file())

    upstream = flags.upstream or (_upstream_from_table(strings["upstream"], root) if "upstream" in strings else None)
    pins = (cwd / flags.pins) if flags.pins is not None else (root / strings["pins"] if "pins" in strings else None)
    return SuperprojectConfig(
        root=root,
        submodule=submodule,
        patches=patches,
        upstream=upstream,
        pins=pins,
        config_file=pyproject if table is not None else None,
        series_file=series_file,
    )
