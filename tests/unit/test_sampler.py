"""The sampler's parsing and filtering, and one real sampling of this machine's own processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from harness.build.sampler import ProcessSampler, belongs_to_build, codegen_flags, crate_name


def test_codegen_flags_in_every_spelling() -> None:
    cmdline = ["rustc", "-C", "codegen-units=16", "-Clto=off", "--codegen=opt-level=3", "-C", "strip=none"]
    assert list(codegen_flags(cmdline)) == [("codegen-units", "16"), ("lto", "off")]
    # cargo's spelling of `lto = true` (the CARGO_PROFILE_RELEASE_LTO=true the upstream profile passes).
    assert list(codegen_flags(["rustc", "-C", "lto", "-Clto"])) == [("lto", "fat"), ("lto", "fat")]


def test_crate_name() -> None:
    assert crate_name(["rustc", "--crate-name", "mas_cli", "--edition=2021"]) == "mas_cli"
    assert crate_name(["rustc", "-vV"]) is None


def test_only_the_source_trees_build_counts() -> None:
    assert belongs_to_build("/app", ["rustc", "crates/cli/src/main.rs"], "/app")
    registry_dep = ["rustc", "--out-dir", "/app/target/x86_64-unknown-linux-gnu/release/deps"]
    assert belongs_to_build("/usr/local/cargo/registry/src/index/serde-1.0.0", registry_dep, "/app")
    cargo_install = ["rustc", "--out-dir", "/tmp/cargo-installAbC/release/deps"]
    assert not belongs_to_build("/usr/local/cargo/registry/src/index/semver-1.0.0", cargo_install, "/app")
    assert not belongs_to_build("/application", ["rustc"], "/app")


def test_samples_a_real_process_tree(tmp_path: Path) -> None:
    # A stand-in named "cargo" (a copy of the Python interpreter) running with its cwd in the
    # watched root: the real process table, read the same way as during a docker build.
    fake_cargo = tmp_path / "cargo"
    fake_cargo.symlink_to(sys.executable)
    root = tmp_path / "app"
    root.mkdir()
    proc = subprocess.Popen([str(fake_cargo), "-c", "import time; x = bytearray(50_000_000); time.sleep(3)"], cwd=root)
    try:
        with ProcessSampler(source_root=str(root), interval=0.05) as sampler:
            time.sleep(1.5)
    finally:
        proc.kill()
        proc.wait()
    report = sampler.report()
    assert report.samples
    assert max(s.cargo for s in report.samples) == 1
    assert report.peak_rss_bytes > 40_000_000
    assert report.max_concurrent_rustc == 0
    assert report.wall_seconds >= 1.5


def test_only_processes_with_the_builds_marker_count(tmp_path: Path) -> None:
    # Two stand-in "cargo" processes in the same source root, as two builds of one tree on one engine
    # would be: only the one whose environment carries this build's marker is sampled.
    fake_cargo = tmp_path / "cargo"
    fake_cargo.symlink_to(sys.executable)
    root = tmp_path / "app"
    root.mkdir()
    script = "import time; x = bytearray(30_000_000); time.sleep(3)"
    ours = subprocess.Popen([str(fake_cargo), "-c", script], cwd=root, env={"VERGEN_GIT_DESCRIBE": "mas-harness-ours"})
    theirs = subprocess.Popen([str(fake_cargo), "-c", script], cwd=root, env={"VERGEN_GIT_DESCRIBE": "other"})
    try:
        marker = ("VERGEN_GIT_DESCRIBE", "mas-harness-ours")
        with ProcessSampler(source_root=str(root), interval=0.05, environ_marker=marker) as sampler:
            time.sleep(1.0)
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()
    assert max(s.cargo for s in sampler.report().samples) == 1
