"""Pure logic of the local Rust base image: names, layout, labels. No docker, no network."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from harness.build import baseimage
from harness.build.baseimage import ImageFile, ImageInputs, LocalRustImage
from harness.errors import EnvironmentProblem

RUSTC_VV = """rustc 1.95.0 (59807616e 2026-04-14)
binary: rustc
commit-hash: 59807616e0000000000000000000000000000000
host: x86_64-unknown-linux-gnu
release: 1.95.0
LLVM version: 20.1.8
"""


def make_inputs(**overrides: object) -> ImageInputs:
    fields: dict[str, object] = {
        "suite": "trixie",
        "packages": baseimage.PACKAGES,
        "toolchain_name": "1.95.0-x86_64-unknown-linux-gnu",
        "toolchain_verbose_version": RUSTC_VV,
        "files": (ImageFile(path=PurePosixPath("/etc/apt/sources.list"), content=b"deb x trixie main\n"),),
        "env": baseimage.IMAGE_ENV,
    }
    fields.update(overrides)
    return ImageInputs(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("rustc 1.95.0 (59807616e 2026-04-14)\n", "1.95.0"),
        ("rustc 1.84.0", "1.84.0"),
        ("rustc 1.96.0-beta.3 (abc 2026-05-01)", "1.96.0"),
    ],
)
def test_parse_rustc_version(output: str, version: str) -> None:
    assert baseimage.parse_rustc_version(output) == version


@pytest.mark.parametrize("output", ["", "cargo 1.95.0", "rustc version unknown"])
def test_parse_rustc_version_rejects_other_output(output: str) -> None:
    with pytest.raises(EnvironmentProblem):
        baseimage.parse_rustc_version(output)


def test_parse_host_triple() -> None:
    assert baseimage.parse_host_triple(RUSTC_VV) == "x86_64-unknown-linux-gnu"
    with pytest.raises(EnvironmentProblem):
        baseimage.parse_host_triple("rustc 1.95.0\nrelease: 1.95.0\n")


def test_names_match_the_official_image_layout() -> None:
    name = baseimage.toolchain_name("1.95.0", "x86_64-unknown-linux-gnu")
    assert name == "1.95.0-x86_64-unknown-linux-gnu"
    assert baseimage.toolchain_dir(name) == PurePosixPath(
        "/usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu"
    )
    assert baseimage.image_tag("1.95.0", "trixie") == "mas-harness/rust:1.95.0-trixie"
    assert 'default_toolchain = "1.95.0-x86_64-unknown-linux-gnu"' in baseimage.rustup_settings(name)


def test_build_contexts_serve_the_upstream_name() -> None:
    image = LocalRustImage(
        tag="mas-harness/rust:1.95.0-bookworm", rustc_version="1.95.0", suite="bookworm", reused=False
    )
    assert image.build_contexts() == {
        "docker.io/library/rust:1.95.0-bookworm": "docker-image://mas-harness/rust:1.95.0-bookworm"
    }


def test_digest_is_stable_and_sensitive() -> None:
    base = make_inputs()
    assert base.digest() == make_inputs().digest()
    assert len(base.digest()) == 64
    assert make_inputs(suite="bookworm").digest() != base.digest()
    assert make_inputs(toolchain_verbose_version=RUSTC_VV.replace("5980", "1234")).digest() != base.digest()
    other_file = (ImageFile(path=PurePosixPath("/etc/apt/sources.list"), content=b"deb y trixie main\n"),)
    assert make_inputs(files=other_file).digest() != base.digest()
    assert make_inputs(env=(("CARGO_HTTP_PROXY", "http://p:3128"),)).digest() != base.digest()


def test_labels_record_suite_toolchain_and_digest() -> None:
    inputs = make_inputs()
    assert inputs.labels("1.95.0") == {
        baseimage.LABEL_SUITE: "trixie",
        baseimage.LABEL_TOOLCHAIN: "1.95.0",
        baseimage.LABEL_INPUTS: inputs.digest(),
    }


def test_import_changes_quote_values() -> None:
    changes = baseimage.import_changes({"a.b": "x y"}, (("PATH", "/usr/bin:/bin"),))
    assert changes == ['ENV PATH="/usr/bin:/bin"', 'LABEL a.b="x y"', 'CMD ["bash"]']


def test_cargo_network_env_keeps_only_network_settings() -> None:
    env = {
        "CARGO_HOME": "/root/.cargo",
        "CARGO_HTTP_PROXY": "http://proxy:3128",
        "CARGO_NET_GIT_FETCH_WITH_CLI": "true",
        "CARGO_TARGET_DIR": "/tmp/t",
        "PATH": "/bin",
    }
    assert baseimage.cargo_network_env(env) == (
        ("CARGO_HTTP_PROXY", "http://proxy:3128"),
        ("CARGO_NET_GIT_FETCH_WITH_CLI", "true"),
    )


def test_cargo_config_sources_prefers_cargo_home(tmp_path: Path) -> None:
    (tmp_path / "opt/cargo").mkdir(parents=True)
    (tmp_path / "opt/cargo/config.toml").write_text("[net]\n")
    (tmp_path / "root/.cargo").mkdir(parents=True)
    (tmp_path / "root/.cargo/config").write_text("[http]\n")
    (tmp_path / ".cargo").mkdir()
    (tmp_path / ".cargo/config.toml").write_text("[source]\n")

    found = baseimage.cargo_config_sources({"CARGO_HOME": "/opt/cargo"}, Path("/root"), tmp_path)

    assert found == [
        (tmp_path / "opt/cargo/config.toml", PurePosixPath("/usr/local/cargo/config.toml")),
        (tmp_path / ".cargo/config.toml", PurePosixPath("/.cargo/config.toml")),
    ]


def test_cargo_config_sources_falls_back_to_home_and_may_find_none(tmp_path: Path) -> None:
    assert baseimage.cargo_config_sources({}, Path("/root"), tmp_path) == []
    (tmp_path / "root/.cargo").mkdir(parents=True)
    (tmp_path / "root/.cargo/config").write_text("[http]\n")
    assert baseimage.cargo_config_sources({}, Path("/root"), tmp_path) == [
        (tmp_path / "root/.cargo/config", PurePosixPath("/usr/local/cargo/config.toml"))
    ]
