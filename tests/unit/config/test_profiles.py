"""Knob profiles: the built-in ones, those of the pins file, and the names a run selects."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from harness.config.profiles import Profile, builtin_profiles, configured_profiles, select_profiles
from harness.errors import BadInput


def test_builtin_profiles_say_what_each_knob_is() -> None:
    profiles = builtin_profiles(cpus=8)
    assert list(profiles) == ["low-ram", "ci", "fat-lto"], "upstream is made from the ref's own Cargo.toml"
    assert profiles["low-ram"].build_args == {}, "low-ram is the patch's own defaults: no knob overridden"
    assert profiles["ci"].build_args == {
        "CARGO_BUILD_JOBS": "1",
        "CARGO_PROFILE_RELEASE_LTO": "false",
        "MAS_BUILD_TARGETS": "x86_64-unknown-linux-gnu",
    }
    upstream = profiles["fat-lto"].build_args
    assert upstream["CARGO_BUILD_JOBS"] == "8"
    assert upstream["CARGO_PROFILE_RELEASE_LTO"] == "fat"
    assert upstream["CARGO_PROFILE_RELEASE_CODEGEN_UNITS"] == "1"


def test_profiles_from_the_pins_file(tmp_path: Path) -> None:
    text = '[profiles.sixteen-gb]\ndescription = "16 GB"\nbuild_args = { CARGO_BUILD_JOBS = "4" }\n'
    profiles = {**builtin_profiles(cpus=2), **configured_profiles(tomllib.loads(text), source="pins.toml")}
    assert profiles["sixteen-gb"] == Profile(
        name="sixteen-gb", description="16 GB", build_args={"CARGO_BUILD_JOBS": "4"}
    )
    assert [p.name for p in select_profiles(profiles, ["sixteen-gb", "ci", "sixteen-gb"])] == ["sixteen-gb", "ci"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[profiles.ci]\nbuild_args = { CARGO_BUILD_JOBS = "4" }\n', "built-in profile"),
        ("[profiles.x]\nbuild_args = { CARGO_BUILD_JOBS = 4 }\n", "must map build arg names to strings"),
        ('[profiles.x]\nbuild_args = { "NOT-A-NAME" = "1" }\n', "must map build arg names to strings"),
        ("[profiles.Upper]\n", "lower case"),
    ],
)
def test_bad_profiles_are_refused_with_the_table_named(table: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        configured_profiles(tomllib.loads(table), source="pins.toml")


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(BadInput, match="unknown profile 'huge'; known: low-ram, ci, fat-lto"):
        select_profiles(builtin_profiles(), ["huge"])
