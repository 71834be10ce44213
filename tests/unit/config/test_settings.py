"""Where the harness keeps its own files: the cache and the journals, chosen from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.settings import default_cache_dir, default_journal_dir


@pytest.mark.parametrize("relative", ["cache", "./cache", "~/cache", "."])
def test_a_relative_xdg_cache_home_is_ignored(relative: str) -> None:
    """The XDG spec: a relative value is invalid and ignored; honoured, it put the cache in the current directory."""
    env = {"HOME": "/home/user", "XDG_CACHE_HOME": relative}
    assert default_cache_dir(env) == Path("/home/user/.cache/mas-harness")


def test_an_absolute_xdg_cache_home_is_used() -> None:
    assert default_cache_dir({"HOME": "/home/user", "XDG_CACHE_HOME": "/var/cache/u"}) == Path(
        "/var/cache/u/mas-harness"
    )


def test_the_harness_cache_variable_wins_over_xdg() -> None:
    env = {"HOME": "/home/user", "XDG_CACHE_HOME": "/var/cache/u", "MAS_HARNESS_CACHE": "/srv/cache"}
    assert default_cache_dir(env) == Path("/srv/cache")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("/var/state", "/var/state/mas-harness/journals"),
        ("state", "/home/user/.local/state/mas-harness/journals"),
        ("", "/home/user/.local/state/mas-harness/journals"),
    ],
)
def test_journals_live_in_the_xdg_state_directory(state: str, expected: str) -> None:
    assert default_journal_dir({"HOME": "/home/user", "XDG_STATE_HOME": state}) == Path(expected)
