"""The sampler's parsing and filtering, one real sampling of this machine's own processes, and cgroup memory."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.build.sampler import (
    CgroupMemory,
    ProcessSampler,
    Sample,
    belongs_to_build,
    codegen_flags,
    crate_name,
)


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


def _sample_until(sampler: ProcessSampler, condition: Callable[[Sample], bool], timeout: float = 30.0) -> Sample:
    """Wait (not a timed assert: the timeout only stops a hung test) until a sample meets `condition`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sample = sampler.latest()
        if sample is not None and condition(sample):
            return sample
        time.sleep(0.02)
    pytest.fail("the sampler never saw what the test waits for")


def test_samples_a_real_process_tree(tmp_path: Path) -> None:
    # A stand-in named "cargo" (a copy of the Python interpreter) running with its cwd in the
    # watched root: the real process table, read the same way as during a docker build.
    fake_cargo = tmp_path / "cargo"
    fake_cargo.symlink_to(sys.executable)
    root = tmp_path / "app"
    root.mkdir()
    proc = subprocess.Popen([str(fake_cargo), "-c", "import time; x = bytearray(50_000_000); time.sleep(30)"], cwd=root)
    started = time.monotonic()
    try:
        with ProcessSampler(source_root=str(root), interval=0.05) as sampler:
            _sample_until(sampler, lambda s: s.cargo == 1 and s.rss_bytes > 40_000_000)
        waited = time.monotonic() - started
    finally:
        proc.kill()
        proc.wait()
    report = sampler.report()
    assert report.samples
    assert max(s.cargo for s in report.samples) == 1
    assert report.peak_rss_bytes > 40_000_000
    assert report.max_concurrent_rustc == 0
    # The report rounds to milliseconds.
    assert 0 < report.wall_seconds <= waited + 0.001, "the sampler's wall time is the time it sampled"


def test_only_processes_with_the_builds_marker_count(tmp_path: Path) -> None:
    # Two stand-in "cargo" processes in the same source root, as two builds of one tree on one engine
    # would be: only the one whose environment carries this build's marker is sampled.
    fake_cargo = tmp_path / "cargo"
    fake_cargo.symlink_to(sys.executable)
    root = tmp_path / "app"
    root.mkdir()
    script = "import time; x = bytearray(30_000_000); time.sleep(30)"
    ours = subprocess.Popen([str(fake_cargo), "-c", script], cwd=root, env={"VERGEN_GIT_DESCRIBE": "mas-harness-ours"})
    theirs = subprocess.Popen([str(fake_cargo), "-c", script], cwd=root, env={"VERGEN_GIT_DESCRIBE": "other"})
    try:
        marker = ("VERGEN_GIT_DESCRIBE", "mas-harness-ours")
        with ProcessSampler(source_root=str(root), interval=0.05, environ_marker=marker) as sampler:
            # Ours seen with its memory, then ten more samples: time enough for theirs to be counted, were it.
            seen = _sample_until(sampler, lambda s: s.cargo == 1 and s.rss_bytes > 25_000_000)
            _sample_until(sampler, lambda s: s.t >= seen.t + 10 * 0.05)
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()
    assert max(s.cargo for s in sampler.report().samples) == 1


def test_the_crates_rustc_compiles_now_are_read_from_its_command_line(tmp_path: Path) -> None:
    # Stand-in "rustc" processes (the Python interpreter under that name) with rustc's --crate-name argument:
    # one compiling mas_cli, one a build script, which names no package.
    fake_rustc = tmp_path / "rustc"
    fake_rustc.symlink_to(sys.executable)
    root = tmp_path / "app"
    root.mkdir()
    sleep = "import time; time.sleep(30)"
    procs = [
        subprocess.Popen([str(fake_rustc), "-c", sleep, "--crate-name", crate], cwd=root)
        for crate in ("mas_cli", "build_script_build")
    ]
    try:
        with ProcessSampler(source_root=str(root), interval=0.05) as sampler:
            _sample_until(sampler, lambda s: s.rustc == 2)
            assert sampler.compiling() == ("mas_cli",)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


# -- cgroups (a tree double shaped like /proc and /sys/fs/cgroup) ---------------------------------


def _cgroup_double(tmp_path: Path, *, version: int) -> CgroupMemory:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "42").mkdir(parents=True)
    if version == 1:
        (proc / "42" / "cgroup").write_text("4:memory:/docker/buildkit/abc\n0::/docker/buildkit/abc\n")
        group = root / "memory" / "docker" / "buildkit" / "abc"
        group.mkdir(parents=True)
        (group / "memory.usage_in_bytes").write_text("3000\n")
        (group / "memory.max_usage_in_bytes").write_text("5000\n")
        (group / "memory.stat").write_text("cache 1000\nrss 2000\ntotal_cache 1000\ntotal_rss 2000\n")
    else:
        (proc / "42" / "cgroup").write_text("0::/system.slice/buildkit/abc\n")
        group = root / "system.slice" / "buildkit" / "abc"
        group.mkdir(parents=True)
        (group / "memory.current").write_text("3000\n")
        (group / "memory.peak").write_text("5000\n")
        (group / "memory.stat").write_text("anon 2000\nfile 1000\n")
    return CgroupMemory(proc_root=proc, cgroup_root=root)


@pytest.mark.parametrize("version", [1, 2])
def test_cgroup_memory_of_a_process_in_either_version(tmp_path: Path, version: int) -> None:
    memory = _cgroup_double(tmp_path, version=version)
    found = memory.cgroup_dir(42)
    assert found is not None and found[1] == version
    assert memory.read(*found) == (3000, 2000, 5000)
    assert memory.cgroup_dir(43) is None, "a process that is gone has no cgroup"


def test_a_removed_cgroup_reads_as_none(tmp_path: Path) -> None:
    memory = _cgroup_double(tmp_path, version=2)
    found = memory.cgroup_dir(42)
    assert found is not None
    for child in found[0].iterdir():
        child.unlink()
    assert memory.read(*found) is None
