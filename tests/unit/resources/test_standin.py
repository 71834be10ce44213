"""The stand-in (test double) MAS workspace: its shape, and what its binary reports once the host's cargo builds it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.resources import standin_tree


@pytest.fixture(scope="module")
def standin() -> Path:
    return standin_tree()


@pytest.fixture(scope="module")
def standin_cli(standin: Path) -> Path:
    return standin / "crates" / "cli"


def _toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="module")
def workspace(standin: Path) -> dict[str, Any]:
    return _toml(standin / "Cargo.toml")


@pytest.fixture(scope="module")
def cli_manifest(standin_cli: Path) -> dict[str, Any]:
    return _toml(standin_cli / "Cargo.toml")


@pytest.fixture(scope="module")
def lock(standin: Path) -> dict[str, Any]:
    return _toml(standin / "Cargo.lock")


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


def test_cli_package_has_mas_cli_binary(cli_manifest: dict[str, Any], standin_cli: Path) -> None:
    assert cli_manifest["package"]["name"] == "mas-cli"
    bins = [b["name"] for b in cli_manifest.get("bin", [])]
    # Either an explicit [[bin]] named mas-cli or the implicit src/main.rs one.
    assert "mas-cli" in bins or (not bins and (standin_cli / "src" / "main.rs").is_file())
    for b in cli_manifest.get("bin", []):
        assert (standin_cli / b.get("path", "src/main.rs")).is_file()


def test_docker_feature_exists_and_is_not_default(cli_manifest: dict[str, Any]) -> None:
    features = cli_manifest["features"]
    assert "docker" in features
    assert "docker" not in features.get("default", [])


def test_cli_depends_only_on_the_workspace_library(cli_manifest: dict[str, Any]) -> None:
    # Nothing from a registry or git: the build must work offline.
    assert cli_manifest.get("dependencies") == {"mas-standin-json": {"path": "../json"}}
    for table in ("build-dependencies", "dev-dependencies"):
        assert not cli_manifest.get(table), f"{table} must be empty (offline build)"
    assert not cli_manifest.get("target"), "no target-specific dependencies"


def test_the_workspace_library_is_a_lib_without_dependencies(standin: Path) -> None:
    library = _toml(standin / "crates" / "json" / "Cargo.toml")
    assert library["package"]["name"] == "mas-standin-json"
    assert (standin / "crates" / "json" / "src" / "lib.rs").is_file()
    for table in ("dependencies", "build-dependencies", "dev-dependencies", "target"):
        assert not library.get(table), f"{table} must be empty (offline build)"


def test_cargo_lock_lists_only_the_workspace_packages_at_the_workspace_version(
    lock: dict[str, Any], workspace: dict[str, Any], cli_manifest: dict[str, Any]
) -> None:
    packages = {p["name"]: p for p in lock["package"]}
    assert sorted(packages) == ["mas-cli", "mas-standin-json"]
    version = cli_manifest["package"]["version"]
    if version == {"workspace": True}:
        version = workspace["workspace"]["package"]["version"]
    for package in packages.values():
        # A version mismatch would make `cargo build --locked` fail.
        assert package["version"] == version
        assert "source" not in package and "checksum" not in package
    assert packages["mas-cli"]["dependencies"] == ["mas-standin-json"]
    assert not packages["mas-standin-json"].get("dependencies")
    assert lock["version"] in (3, 4)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, standin: Path) -> Callable[[Mapping[str, str]], Path]:
    """Build the stand-in with the host's cargo (nothing from a registry: offline, a few seconds); its mas-cli."""
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail("the stand-in is built with the machine's own cargo, and there is none on PATH")

    def build(knobs: Mapping[str, str]) -> Path:
        target = tmp_path_factory.mktemp("standin-target")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARGO_PROFILE_")}
        env.update(knobs)
        argv = [cargo, "build", "--release", "--locked", "--offline", "--features", "docker"]
        proc = subprocess.run(
            [*argv, "--target-dir", str(target)], cwd=standin, env=env, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return target / "release" / "mas-cli"

    return build


def test_the_built_binary_reports_how_cargo_built_it(built: Callable[[Mapping[str, str]], Path]) -> None:
    knobs = {
        "CARGO_BUILD_JOBS": "1",
        "CARGO_PROFILE_RELEASE_LTO": "false",
        "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "7",
        "VERGEN_GIT_DESCRIBE": "standin-test",
    }
    binary = built(knobs)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0
    assert re.fullmatch(r"mas-cli \S+ \(stand-in\)\n", version.stdout), version.stdout
    info = json.loads(subprocess.run([binary, "build-info"], capture_output=True, text=True, check=True).stdout)
    assert info["standin"] is True
    assert {"num_jobs", "target", "host", "profile", "opt_level", "debug", "env", "features"} <= info.keys()
    assert (info["num_jobs"], info["profile"], info["features"]) == (1, "release", ["docker"])
    # What the Dockerfile's build args reach: cargo's environment, as the build script recorded it.
    for name, value in knobs.items():
        assert info["env"][name] == value, name
    usage = subprocess.run([binary, "frobnicate"], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "not MAS" in usage.stderr


def test_dockerignore_excludes_target(standin: Path) -> None:
    lines = [
        line.strip()
        for line in (standin / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert any(re.fullmatch(r"/?target/?", line) for line in lines), lines


def test_no_build_output_left_in_fixture(standin: Path) -> None:
    leftovers = [p for p in standin.rglob("target") if p.is_dir()]
    assert not leftovers, leftovers


def test_readme_says_it_is_a_test_double_not_mas(standin: Path) -> None:
    readme = (standin / "README.md").read_text()
    lowered = readme.lower()
    assert "test double" in lowered
    assert "stand-in" in lowered
    assert re.search(r"\bnot mas\b", lowered)
