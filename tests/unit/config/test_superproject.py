"""`[tool.mas-harness]`: found from the current directory upward, read once, flags over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.config import superproject
from harness.config.superproject import SuperprojectFlags, resolve_superproject
from harness.config.tomlfile import read_toml

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
    assert config is not None and config.patch == tmp_path.resolve() / "mine.patch"
    assert reads == [tmp_path.resolve() / "pyproject.toml"]


def test_a_submodule_flag_without_any_table_makes_the_current_directory_the_superproject(tmp_path: Path) -> None:
    flags = SuperprojectFlags(submodule=Path("mas"), patch=Path("p.patch"))
    config = resolve_superproject(flags, cwd=tmp_path, discover=False)
    assert config is not None and config.root == tmp_path.resolve() and config.config_file is None
