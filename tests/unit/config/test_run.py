"""The run record: resolved once, each value from the flag, else the environment, else the pins; in a superproject,
its table's upstream and pins."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from harness.config.pins import load_pins
from harness.config.run import RunFlags, default_cache_dir, default_journal_dir, resolve_pins, resolve_run
from harness.config.superproject import SuperprojectConfig
from harness.errors import BadInput


def _superproject(tmp_path: Path, *, upstream: str | None) -> SuperprojectConfig:
    return SuperprojectConfig(
        root=tmp_path,
        submodule="mas",
        patches=(tmp_path / "p.patch",),
        upstream=upstream,
        pins=None,
        config_file=None,
    )


def test_outside_a_superproject_the_flag_wins_over_the_environment_over_the_pins(tmp_path: Path) -> None:
    env = {"MAS_UPSTREAM": "/from/env", "MAS_HARNESS_CACHE": str(tmp_path / "env-cache")}
    flagged = resolve_run(RunFlags(upstream="/from/flag", cache_dir=tmp_path / "flag-cache"), env=env)
    assert (flagged.upstream, flagged.cache_dir) == ("/from/flag", tmp_path / "flag-cache")
    from_env = resolve_run(RunFlags(), env=env)
    assert (from_env.upstream, from_env.cache_dir) == ("/from/env", tmp_path / "env-cache")
    from_pins = resolve_run(RunFlags(), env={"MAS_HARNESS_CACHE": str(tmp_path)})
    assert from_pins.upstream == load_pins(None).upstream
    assert from_pins.superproject is None and from_pins.pins_upstream() == from_pins.upstream


def test_in_a_superproject_the_upstream_is_its_tables_or_the_submodules_never_the_pins_default(
    tmp_path: Path,
) -> None:
    env = {"MAS_UPSTREAM": "/from/env", "MAS_HARNESS_CACHE": str(tmp_path)}
    own = resolve_run(RunFlags(), env=env, superproject=_superproject(tmp_path, upstream=None))
    assert own.upstream is None, "the submodule's repository decides"
    assert own.in_superproject().submodule == "mas"
    with pytest.raises(ValueError):
        own.pins_upstream()
    configured = resolve_run(RunFlags(), env=env, superproject=_superproject(tmp_path, upstream="/mirror"))
    assert configured.upstream == "/mirror"


def test_the_flags_say_whether_verdicts_are_reused_and_scripts_confined(tmp_path: Path) -> None:
    env = {"MAS_HARNESS_CACHE": str(tmp_path)}
    run = resolve_run(RunFlags(offline=True, no_cache=True, unconfined=True), env=env)
    assert (run.offline, run.reuse_verdicts, run.unconfined) == (True, False, True)
    with pytest.raises(FrozenInstanceError):
        run.offline = False  # type: ignore[misc]


def test_the_pins_alone_need_no_cache_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    env = {"MAS_HARNESS_CACHE": str(a_file)}
    assert resolve_pins(None, env=env).pins, "the harness's own pins"
    with pytest.raises(BadInput, match="is a file, not a directory"):
        resolve_run(RunFlags(), env=env)


# -- where the harness keeps its own files: the cache and the journals, chosen from the environment --------


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
