"""Reading an exported image (`--export oci|docker`) as files, never running it: the archives are test doubles made
here (`synthetic_archive`), shaped as buildx writes them, layers with OCI whiteouts included."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from harness.build.exported import file_facts, open_export
from harness.build.images import NOT_RUN_EXPORTED, InArchive, inspect_final_image, inspect_image
from harness.errors import EnvironmentProblem

MARKER = "mas-harness-0123456789ab"
BINARY = b"\x7fELF..." + MARKER.encode() + b"...rest of the binary"
CONFIG = {"config": {"Entrypoint": ["/usr/local/bin/mas-cli"], "User": "65532"}, "rootfs": {"type": "layers"}}


def _layer(files: Mapping[str, bytes], *, compress: bool) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue()) if compress else raw.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def synthetic_archive(path: Path, layers: list[Mapping[str, bytes]], *, kind: str) -> Path:
    """An image archive as `buildx build --output type=<kind>` writes one (a test double: no engine made it)."""
    blobs = [_layer(files, compress=kind == "oci") for files in layers]
    config = json.dumps(CONFIG).encode()

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    with tarfile.open(path, "w") as tar:
        if kind == "docker":
            names = [f"{digest(blob)[7:]}/layer.tar" for blob in blobs]
            for name, blob in zip(names, blobs, strict=True):
                _add(tar, name, blob)
            _add(tar, "config.json", config)
            entries = [{"Config": "config.json", "RepoTags": ["x:y"], "Layers": names}]
            _add(tar, "manifest.json", json.dumps(entries).encode())
            return path
        for blob in [*blobs, config]:
            _add(tar, f"blobs/sha256/{digest(blob)[7:]}", blob)
        manifest = json.dumps(
            {
                "config": {"digest": digest(config)},
                "layers": [{"digest": digest(blob)} for blob in blobs],
            }
        ).encode()
        _add(tar, f"blobs/sha256/{digest(manifest)[7:]}", manifest)
        index = {"manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest)}]}
        _add(tar, "index.json", json.dumps(index).encode())
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    return path


BUILDER_LAYERS: list[Mapping[str, bytes]] = [
    {"usr/local/bin/mas-cli-arm64": b"old", "usr/local/bin/other": b"x", "usr/local/bin/mas-cli": b"stale"},
    {"usr/local/bin/.wh.mas-cli-arm64": b"", "usr/local/bin/mas-cli": BINARY},
]


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_an_exported_image_shows_its_files_as_the_image_does_whiteouts_applied(tmp_path: Path, kind: str) -> None:
    image = open_export(synthetic_archive(tmp_path / "image.tar", BUILDER_LAYERS, kind=kind))
    assert image.listdir("/usr/local/bin/") == ("mas-cli", "other"), "the upper layer deleted mas-cli-arm64"
    facts = file_facts(image, "/usr/local/bin/mas-cli", needle=MARKER.encode())
    assert facts is not None
    assert facts.sha256 == hashlib.sha256(BINARY).hexdigest(), "the upper layer's file, not the stale one"
    assert facts.size == len(BINARY)
    assert facts.contains
    assert file_facts(image, "/usr/local/bin/mas-cli-arm64") is None
    assert image.entrypoint == ("/usr/local/bin/mas-cli",)
    assert image.user == "65532"


def test_an_opaque_directory_hides_what_lower_layers_had_there(tmp_path: Path) -> None:
    layers: list[Mapping[str, bytes]] = [
        {"usr/local/bin/mas-cli": b"old"},
        {"usr/local/bin/.wh..wh..opq": b"", "usr/local/bin/new": b"n"},
    ]
    image = open_export(synthetic_archive(tmp_path / "image.tar", layers, kind="oci"))
    assert image.listdir("/usr/local/bin") == ("new",)
    assert file_facts(image, "/usr/local/bin/mas-cli") is None


def test_the_marker_is_found_across_the_boundary_of_two_reads(tmp_path: Path) -> None:
    binary = b"\0" * ((1 << 20) - 5) + MARKER.encode() + b"\0" * 10
    image = open_export(synthetic_archive(tmp_path / "image.tar", [{"bin/x": binary}], kind="oci"))
    facts = file_facts(image, "/bin/x", needle=MARKER.encode())
    assert facts is not None and facts.contains
    other = file_facts(image, "/bin/x", needle=b"mas-harness-ffffffffffff")
    assert other is not None and not other.contains


def test_the_checks_of_an_exported_image_read_it_and_never_run_its_binary(tmp_path: Path) -> None:
    archive = synthetic_archive(tmp_path / "image.tar", BUILDER_LAYERS, kind="oci")
    at = InArchive(path=archive, tag="mas-harness/builder:t")
    facts = inspect_image(at, binary="mas-cli", shipped="/usr/local/bin/mas-cli", want_build_info=True, marker=MARKER)
    assert facts.binaries == ("mas-cli",)
    assert facts.version_exit is None and facts.version_output is None, "not run"
    assert facts.build_info is None
    assert facts.not_run == NOT_RUN_EXPORTED
    assert facts.marker_in_binary is True
    assert facts.shipped_sha256 == hashlib.sha256(BINARY).hexdigest()
    final = inspect_final_image(at, want_build_info=True, marker="mas-harness-ffffffffffff")
    assert final.entrypoint == ("/usr/local/bin/mas-cli",)
    assert final.user == "65532"
    assert final.binary_sha256 == facts.shipped_sha256
    assert final.marker_in_binary is False, "another build's marker is not in this binary"
    assert final.not_run == NOT_RUN_EXPORTED


@pytest.mark.parametrize("content", [b"", b"not a tar at all", None])
def test_an_archive_that_is_not_an_exported_image_is_one_line_exit_3(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "image.tar"
    if content is None:
        with tarfile.open(path, "w") as tar:
            _add(tar, "index.json", b"{}")
    else:
        path.write_bytes(content)
    with pytest.raises(EnvironmentProblem) as raised:
        open_export(path)
    assert "not an image buildx exported" in str(raised.value)
    assert "\n" not in str(raised.value)
