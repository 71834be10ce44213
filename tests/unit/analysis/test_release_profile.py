"""Upstream's own [profile.release] per ref, and the `upstream` profile made from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis.release_profile import (
    FROM_CARGO,
    FROM_FILE,
    compare_with_defaults,
    describe_change,
    parse_release_profile,
    upstream_profile,
)
from harness.cli.main import main
from harness.config.profiles import BASELINE
from harness.errors import BadInput
from harness.knobs import KNOB_DEFAULTS
from harness.resources import patches_dir
from harness.upstream.cache import UpstreamCache
from tests.support import MakeRepo, git

FAT = "[workspace]\nmembers = []\n[profile.release]\ncodegen-units = 1\nlto = true\n"
THIN = '[workspace]\n[profile.release]\n# fat LTO costs too much build time\nlto = "thin"\n'


def test_fat_lto_and_one_unit_as_v1_17_has_them() -> None:
    profile = parse_release_profile(FAT)
    assert (profile.lto, profile.codegen_units) == ("true", 1)
    assert profile["lto"].source == FROM_FILE
    assert profile["debug"].source == FROM_CARGO


def test_thin_lto_and_cargo_default_units_as_v1_22_has_them() -> None:
    profile = parse_release_profile(THIN)
    assert (profile.lto, profile.codegen_units) == ("thin", 16)
    assert profile["codegen-units"].source == FROM_CARGO


def test_no_cargo_toml_is_every_cargo_default() -> None:
    profile = parse_release_profile(None)
    assert not profile.found
    assert all(setting.source == FROM_CARGO for setting in profile.settings.values())


@pytest.mark.parametrize("text", ["[profile.release]\nlto = 3\n", "[profile.release]\ncodegen-units = 0\n", "[x"])
def test_what_cargo_would_refuse_is_bad_input(text: str) -> None:
    with pytest.raises(BadInput):
        parse_release_profile(text)


def test_the_finding_says_where_upstream_already_matches_the_patch() -> None:
    fat = compare_with_defaults(parse_release_profile(FAT), KNOB_DEFAULTS, ref="v1.17.0")
    assert "upstream builds with fat LTO (lto = true) at v1.17.0" in fat
    assert "upstream uses 1 codegen unit(s); the patch's default is 16" in fat
    thin = compare_with_defaults(parse_release_profile(THIN), KNOB_DEFAULTS, ref="v1.22.0")
    assert "thin LTO (lto = thin) at v1.22.0; the patch's default is no cross-crate LTO" in thin
    assert "upstream already uses 16 codegen units (cargo's default)" in thin


def test_a_bump_across_the_change_is_one_line() -> None:
    line = describe_change(parse_release_profile(FAT), parse_release_profile(THIN), old="v1.21.0", new="v1.22.0")
    assert line == "upstream's release profile changes from v1.21.0 to v1.22.0: lto true -> thin, codegen-units 1 -> 16"
    assert describe_change(parse_release_profile(FAT), parse_release_profile(FAT), old="a", new="b") is None


def test_the_upstream_profile_is_the_refs_own_and_names_its_sources() -> None:
    fat = upstream_profile(parse_release_profile(FAT), ref="v1.17.0", cpus=2)
    assert fat.name == BASELINE
    assert fat.build_args["CARGO_PROFILE_RELEASE_LTO"] == "true"
    assert fat.build_args["CARGO_PROFILE_RELEASE_CODEGEN_UNITS"] == "1"
    thin = upstream_profile(parse_release_profile(THIN), ref="v1.22.0", cpus=2)
    assert thin.build_args["CARGO_PROFILE_RELEASE_LTO"] == "thin"
    assert thin.build_args["CARGO_PROFILE_RELEASE_CODEGEN_UNITS"] == "16"
    assert thin.sources["CARGO_PROFILE_RELEASE_LTO"] == "v1.22.0 Cargo.toml [profile.release]"
    assert thin.sources["CARGO_PROFILE_RELEASE_CODEGEN_UNITS"] == "cargo's default (v1.22.0 does not set it)"


def test_every_bundled_release_reads_fat_lto_from_its_own_cargo_toml(bundle_cache: UpstreamCache) -> None:
    for tag in ("v0.14.0", "v1.17.0", "v1.19.0"):
        resolved = bundle_cache.resolve(tag)
        assert resolved.cargo_toml_blob is not None
        profile = parse_release_profile(bundle_cache.read_blob(resolved.cargo_toml_blob).decode())
        assert (profile.lto, profile.codegen_units) == ("true", 1), tag


def _v1_19_files(bundle_cache: UpstreamCache) -> dict[str, bytes]:
    resolved = bundle_cache.resolve("v1.19.0")
    assert resolved.cargo_toml_blob is not None
    cargo = bundle_cache.read_blob(resolved.cargo_toml_blob)
    assert b"lto = true" in cargo and b"codegen-units = 1" in cargo
    return {"Dockerfile": bundle_cache.read_blob(resolved.dockerfile_blob), "Cargo.toml": cargo}


def _thin(cargo: bytes) -> bytes:
    """v1.19.0's Cargo.toml as upstream's v1.22.0 has it: thin LTO, codegen units left to cargo."""
    thin = cargo.decode().replace("codegen-units = 1 ", "").replace("lto = true ", 'lto = "thin" ')
    return ("\n".join(line for line in thin.splitlines() if not line.startswith("codegen-units")) + "\n").encode()


def _v1_22_like(make_repo: MakeRepo, bundle_cache: UpstreamCache) -> Path:
    """An upstream whose v1.22.0 is v1.19.0's Dockerfile with thin LTO in its Cargo.toml, as upstream's v1.22.0 has."""
    files = _v1_19_files(bundle_cache)
    repo = make_repo({**files, "Cargo.toml": _thin(files["Cargo.toml"])})
    git(repo, "tag", "v1.22.0")
    return repo


def test_compat_reports_upstreams_own_profile_per_ref(
    bundle: Path, bundle_cache: UpstreamCache, make_repo: MakeRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compat", "--upstream", str(bundle), "--cache-dir", str(tmp_path / "a"), "v1.17.0", "--json"]) == 0
    [v1_17] = json.loads(capsys.readouterr().out)["refs"]
    profile = v1_17["upstream_release_profile"]
    assert (profile["lto"], profile["codegen-units"]) == (
        {"value": "true", "source": FROM_FILE},
        {"value": "1", "source": FROM_FILE},
    )
    repo = _v1_22_like(make_repo, bundle_cache)
    assert main(["compat", "--upstream", str(repo), "--cache-dir", str(tmp_path / "b"), "v1.22.0", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    [v1_22] = document["refs"]
    profile = v1_22["upstream_release_profile"]
    assert (profile["lto"], profile["codegen-units"]) == (
        {"value": "thin", "source": FROM_FILE},
        {"value": "16", "source": FROM_CARGO},
    )
    [finding] = [r for r in document["results"] if r["name"] == "upstream-release-profile"]
    assert "thin LTO (lto = thin) at v1.22.0; the patch's default is no cross-crate LTO" in finding["reason"]
    assert "upstream already uses 16 codegen units (cargo's default)" in finding["reason"]


def test_the_terminal_says_when_upstream_already_builds_as_lightly_as_a_default(
    bundle: Path, bundle_cache: UpstreamCache, make_repo: MakeRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compat", "--upstream", str(bundle), "--cache-dir", str(tmp_path / "a"), "v1.17.0"]) == 0
    assert "already" not in capsys.readouterr().out, "fat LTO and one unit: nothing upstream already does"
    repo = _v1_22_like(make_repo, bundle_cache)
    assert main(["compat", "--upstream", str(repo), "--cache-dir", str(tmp_path / "b"), "v1.22.0"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "v1.22.0: upstream builds with thin LTO (lto = thin) at v1.22.0" in out
    assert "upstream already uses 16 codegen units (cargo's default), the patch's default" in out


def test_profile_dry_run_shows_the_truthful_upstream_for_both(
    bundle: Path, bundle_cache: UpstreamCache, make_repo: MakeRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _v1_22_like(make_repo, bundle_cache)
    expected = {"v1.17.0": (bundle, "true", "1"), "v1.22.0": (repo, "thin", "16")}
    for ref, (upstream, lto, units) in expected.items():
        argv = ["profile", "--upstream", str(upstream), "--cache-dir", str(tmp_path / ref), "--ref", ref]
        assert main([*argv, "--dry-run", "--json", "--profile", "upstream", "--profile", "fat-lto"]) == 0
        document = json.loads(capsys.readouterr().out)
        upstream_profile, fat = document["profiles"]
        assert upstream_profile["name"] == "upstream"
        assert upstream_profile["build_args"]["CARGO_PROFILE_RELEASE_LTO"] == lto, ref
        assert upstream_profile["build_args"]["CARGO_PROFILE_RELEASE_CODEGEN_UNITS"] == units, ref
        assert upstream_profile["sources"]["CARGO_PROFILE_RELEASE_LTO"] == f"{ref} Cargo.toml [profile.release]"
        assert fat["build_args"]["CARGO_PROFILE_RELEASE_LTO"] == "fat", "the historical baseline stays as it was"


def test_a_dry_run_needs_none_of_the_build_stack(bundle: Path, tmp_path: Path) -> None:
    """As installed without the `build` extra: the plan is read from the ref, not from an engine."""
    absent = ["python_on_whales", "testcontainers", "psutil", "matplotlib"]
    code = (
        "import sys, json\n"
        f"sys.modules.update(dict.fromkeys({absent!r}))\n"  # a None entry makes the import fail
        "from harness.cli.main import main\n"
        f"sys.exit(main(['profile', '--dry-run', '--upstream', {str(bundle)!r}, '--cache-dir', {str(tmp_path)!r},"
        " '--ref', 'v1.17.0', '--json']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [p["name"] for p in document["profiles"]] == ["low-ram", "ci", "upstream"]
    assert document["dry_run"] is True


def test_a_bump_across_upstreams_profile_change_says_so_in_one_line(
    bundle_cache: UpstreamCache, make_repo: MakeRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The users' submodule records a v1.19.0-like commit; they bump it to a release built with thin LTO."""
    files = _v1_19_files(bundle_cache)
    upstream = make_repo(files, name="upstream")
    recorded = git(upstream, "rev-parse", "HEAD")
    (upstream / "Cargo.toml").write_bytes(_thin(files["Cargo.toml"]))
    git(upstream, "commit", "--quiet", "-am", "thin LTO")
    git(upstream, "tag", "v1.22.0")
    root = make_repo({"pyproject.toml": b'[tool.mas-harness]\nsubmodule = "mas"\npatch = "mas.patch"\n'}, name="chat")
    (root / "mas.patch").write_bytes((patches_dir() / "patch-dockerfile-v1.18.patch").read_bytes())
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "--quiet", str(upstream), "mas")
    git(root / "mas", "checkout", "--quiet", recorded)
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "MAS with our patch")

    argv = ["compat", "--superproject", str(root), "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, "--bump-to", "v1.22.0"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        f"upstream's release profile changes from {recorded[:12]} to v1.22.0: lto true -> thin, codegen-units 1 -> 16"
        in out
    )
