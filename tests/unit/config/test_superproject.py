"""`[tool.mas-harness]`: found from the current directory upward, read once, flags over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.config import superproject
from harness.config.superproject import SuperprojectFlags, resolve_superproject
from harness.config.tomlfile import read_toml
from harness.errors import BadInput

TABLE = '[tool.mas-harness]\nsubmodule = "mas"\npatch = "p.patch"\n'


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each pyproject.toml read, through a counting wrapper (a test double) around the real reader."""
    seen: list[Path] = []

    def counting(path: Path, what: str) -> Any:
        seen.append(path)
        return read_toml(path, what)

    monkeypatch.setattr(superproject, "read_toml", counting)
    return seen


def test_a_discovered_table_is_read_once(tmp_path: Path, reads: list[Path]) -> None:
    (tmp_path / "pyproject.toml").write_text(TABLE)
    below = tmp_path / "docker" / "chat"
    below.mkdir(parents=True)
    config = resolve_superproject(SuperprojectFlags(), cwd=below)
    assert config is not None and (config.root, config.submodule) == (tmp_path.resolve(), "mas")
    assert reads.count(tmp_path.resolve() / "pyproject.toml") == 1


def test_a_named_superproject_is_read_once_and_flags_win(tmp_path: Path, reads: list[Path]) -> None:
    (tmp_path / "pyproject.toml").write_text(TABLE)
    config = resolve_superproject(
        SuperprojectFlags(superproject=tmp_path, patch=Path("mine.patch")), cwd=tmp_path, discover=False
    )
    assert config is not None and config.patches == (tmp_path.resolve() / "mine.patch",)
    assert reads == [tmp_path.resolve() / "pyproject.toml"]


def test_a_submodule_flag_without_any_table_makes_the_current_directory_the_superproject(tmp_path: Path) -> None:
    flags = SuperprojectFlags(submodule=Path("mas"), patch=Path("p.patch"))
    config = resolve_superproject(flags, cwd=tmp_path, discover=False)
    assert config is not None and config.root == tmp_path.resolve() and config.config_file is None


def _table(tmp_path: Path, body: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f'[tool.mas-harness]\nsubmodule = "mas"\n{body}')
    return tmp_path


def _resolve(root: Path, **flags: Any) -> superproject.SuperprojectConfig:
    config = resolve_superproject(SuperprojectFlags(superproject=root, **flags), cwd=root, discover=False)
    assert config is not None
    return config


def test_one_patch_is_a_series_of_one(tmp_path: Path) -> None:
    config = _resolve(_table(tmp_path, 'patch = "p.patch"\n'))
    root = tmp_path.resolve()
    assert config.patches == (root / "p.patch",) and not config.is_series
    assert not config.is_series and config.series_file is None


def test_patches_are_kept_in_the_order_the_table_gives_them(tmp_path: Path) -> None:
    config = _resolve(_table(tmp_path, 'patches = ["patches/b.patch", "patches/a.patch"]\n'))
    root = tmp_path.resolve()
    assert config.patches == (root / "patches/b.patch", root / "patches/a.patch")
    assert config.is_series


def test_a_series_file_names_patches_relative_to_its_own_directory_and_skips_comments(tmp_path: Path) -> None:
    patches = tmp_path / "docker" / "patches"
    patches.mkdir(parents=True)
    (patches / "series").write_text(
        "# applied in this order\n\npatch-dockerfile.patch\n  dockerignore.patch -p1  # the build context\n#old.patch\n"
    )
    config = _resolve(_table(tmp_path, 'series = "docker/patches/series"\n'))
    named = tmp_path.resolve() / "docker/patches"
    assert config.patches == (named / "patch-dockerfile.patch", named / "dockerignore.patch")
    assert config.series_file == named / "series"


def test_the_patch_flag_stands_for_the_whole_series(tmp_path: Path) -> None:
    root = _table(tmp_path, 'patches = ["a.patch", "b.patch"]\n')
    config = _resolve(root, patch=Path("mine.patch"))
    assert config.patches == (tmp_path.resolve() / "mine.patch",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('patch = "a.patch"\npatches = ["b.patch"]\n', "`patch` and `patches` both say which patches"),
        ('patches = ["a.patch"]\nseries = "series"\n', "`patches` and `series` both say which patches"),
        ('patch = "a.patch"\nseries = "series"\n', "`patch` and `series` both say which patches"),
        ("patches = []\n", "`patches` is empty"),
        ('patches = ["a.patch", 3]\n', "`patches` must be a list of non-empty strings"),
        ('patches = "a.patch"\n', "`patches` must be a list of non-empty strings"),
        ('patch = ["a.patch"]\n', "`patch` must be a non-empty string"),
        ('patches = ["a.patch", "b.patch", "./a.patch"]\n', r"/a\.patch is named twice"),
        ('series = "missing/series"\n', r"series file .*missing/series does not exist"),
    ],
)
def test_a_bad_choice_of_patches_is_one_line_of_bad_input(tmp_path: Path, body: str, message: str) -> None:
    root = _table(tmp_path, body)
    with pytest.raises(BadInput, match=message) as raised:
        _resolve(root)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("series", "message"),
    [
        ("a.patch\nb.patch\na.patch\n", r"a\.patch is named twice"),
        ("# nothing yet\n\n", "names no patch"),
        ("a.patch -p0\n", r"line 1: `-p0` after a\.patch"),
        ("a.patch\n-R b.patch\n", "line 2"),
    ],
)
def test_a_bad_series_file_is_one_line_of_bad_input(tmp_path: Path, series: str, message: str) -> None:
    (tmp_path / "series").write_text(series)
    root = _table(tmp_path, 'series = "series"\n')
    with pytest.raises(BadInput, match=message) as raised:
        _resolve(root)
    assert "\n" not in str(raised.value)
