"""Static checks of the stand-in (test double) MAS workspace fixture.

Nothing here compiles anything: the unit tier has neither cargo nor docker.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

STANDIN = Path(__file__).resolve().parents[1] / "fixtures" / "standin"
CLI = STANDIN / "crates" / "cli"


def _toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="module")
def workspace() -> dict[str, Any]:
    return _toml(STANDIN / "Cargo.toml")


@pytest.fixture(scope="module")
def cli_manifest() -> dict[str, Any]:
    return _toml(CLI / "Cargo.toml")


@pytest.fixture(scope="module")
def lock() -> dict[str, Any]:
    return _toml(STANDIN / "Cargo.lock")


def test_workspace_shape_matches_upstream(workspace: dict[str, Any]) -> None:
    ws = workspace["workspace"]
    assert ws["members"] == ["crates/*"]
    assert ws["resolver"] == "2"
    assert isinstance(ws["package"]["version"], str) and ws["package"]["version"]


def test_release_profile_pins_lto_and_codegen_units_like_upstream(workspace: dict[str, Any]) -> None:
    release = workspace["profile"]["release"]
    # Exactly as upstream pins them (fat LTO, one codegen unit), so that the
    # Dockerfile build args are what has to override them.
    assert release["lto"] is True
    assert release["codegen-units"] == 1
    assert type(release["codegen-units"]) is int


def test_cli_package_has_mas_cli_binary(cli_manifest: dict[str, Any]) -> None:
    assert cli_manifest["package"]["name"] == "mas-cli"
    bins = [b["name"] for b in cli_manifest.get("bin", [])]
    # Either an explicit [[bin]] named mas-cli or the implicit src/main.rs one.
    assert "mas-cli" in bins or (not bins and (CLI / "src" / "main.rs").is_file())
    for b in cli_manifest.get("bin", []):
        assert (CLI / b.get("path", "src/main.rs")).is_file()


def test_docker_feature_exists_and_is_not_default(cli_manifest: dict[str, Any]) -> None:
    features = cli_manifest["features"]
    assert "docker" in features
    assert "docker" not in features.get("default", [])


def test_cli_has_no_dependencies(cli_manifest: dict[str, Any]) -> None:
    for table in ("dependencies", "build-dependencies", "dev-dependencies"):
        assert not cli_manifest.get(table), f"{table} must be empty (offline build)"
    assert not cli_manifest.get("target"), "no target-specific dependencies"


def test_cargo_lock_lists_only_mas_cli_at_workspace_version(
    lock: dict[str, Any], workspace: dict[str, Any], cli_manifest: dict[str, Any]
) -> None:
    packages = lock["package"]
    assert [p["name"] for p in packages] == ["mas-cli"]
    (mas_cli,) = packages
    version = cli_manifest["package"]["version"]
    if version == {"workspace": True}:
        version = workspace["workspace"]["package"]["version"]
    # A version mismatch would make `cargo build --locked` fail.
    assert mas_cli["version"] == version
    assert "source" not in mas_cli and "checksum" not in mas_cli
    assert not mas_cli.get("dependencies")
    assert lock["version"] in (3, 4)


def test_build_script_watches_every_recorded_variable() -> None:
    build_rs = (CLI / "build.rs").read_text()
    assert 'println!("cargo:rerun-if-env-changed={}"' in build_rs
    for name in (
        "NUM_JOBS",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "CARGO_PROFILE_RELEASE_LTO",
        "CARGO_PROFILE_RELEASE_CODEGEN_UNITS",
        "CARGO_BUILD_JOBS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_FEATURE_DOCKER",
        "VERGEN_GIT_DESCRIBE",
    ):
        assert f'"{name}"' in build_rs, name
    assert '"CARGO_PROFILE_RELEASE_"' in build_rs  # catches any other profile knob


def test_binary_source_has_the_documented_interface() -> None:
    main_rs = (CLI / "src" / "main.rs").read_text()
    assert '"mas-cli {} (stand-in)"' in main_rs
    assert '["build-info"]' in main_rs and '["--version"]' in main_rs
    assert "ExitCode::from(2)" in main_rs
    for key in ("num_jobs", "target", "host", "profile", "opt_level", "debug", "env", "features"):
        assert f'\\"{key}\\":' in main_rs, key
    assert '\\"standin\\":true' in main_rs
    assert "serde" not in main_rs


def test_dockerignore_excludes_target() -> None:
    lines = [
        line.strip()
        for line in (STANDIN / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert any(re.fullmatch(r"/?target/?", line) for line in lines), lines


def test_no_build_output_left_in_fixture() -> None:
    leftovers = [p for p in STANDIN.rglob("target") if p.is_dir()]
    assert not leftovers, leftovers


def test_readme_says_it_is_a_test_double_not_mas() -> None:
    readme = (STANDIN / "README.md").read_text()
    lowered = readme.lower()
    assert "test double" in lowered
    assert "stand-in" in lowered
    assert re.search(r"\bnot mas\b", lowered)
