"""An image exported by buildx (`--output type=oci` or `type=docker`), read as files: never run.

Both archives name a config and a list of layers: OCI through `index.json` and the manifest
blob it points to (through a nested index too), docker through `manifest.json`. Layers are
tarballs, gzip-compressed or not; a file of the image is the topmost layer's, unless a layer
above deleted it (an OCI whiteout, `.wh.NAME`, or an opaque directory, `.wh..wh..opq`).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from harness.errors import EnvironmentProblem

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
_CHUNK = 1 << 20


def _member(name: str) -> str:
    return str(PurePosixPath("/") / name.removeprefix("./"))


@dataclass(frozen=True, kw_only=True)
class ExportedImage:
    """An exported image's configuration and layers (their member names in the archive), bottom layer first."""

    archive: Path
    config: dict[str, Any]
    layers: tuple[str, ...]
    _names: dict[str, dict[str, tarfile.TarInfo]] = field(default_factory=dict, compare=False, repr=False)
    """Each layer's member names, read once: a layer is decompressed whole to list it."""

    @property
    def entrypoint(self) -> tuple[str, ...]:
        return tuple(self.config.get("config", {}).get("Entrypoint") or ())

    @property
    def user(self) -> str | None:
        return self.config.get("config", {}).get("User") or None

    def _layer_names(self, layer: str) -> dict[str, tarfile.TarInfo]:
        if layer not in self._names:
            with tarfile.open(self.archive) as outer, _opened(outer, layer) as data, tarfile.open(fileobj=data) as tar:
                self._names[layer] = {_member(info.name): info for info in tar.getmembers()}
        return self._names[layer]

    def _owner(self, path: str) -> int | None:
        """The index of the layer whose `path` the image shows, None when it has none."""
        wanted = PurePosixPath(path)
        for index in range(len(self.layers) - 1, -1, -1):
            names = self._layer_names(self.layers[index])
            if str(wanted) in names:
                return index if names[str(wanted)].isfile() else None
            if str(wanted.parent / f"{WHITEOUT}{wanted.name}") in names:
                return None
            if any(str(parent / OPAQUE) in names for parent in wanted.parents):
                return None
        return None

    def listdir(self, directory: str) -> tuple[str, ...]:
        """The names in `directory` as the image shows it, whiteouts applied."""
        parent = PurePosixPath(directory)
        present: set[str] = set()
        for layer in self.layers:
            names = self._layer_names(layer)
            if str(parent / OPAQUE) in names:
                present.clear()
            for name in names:
                path = PurePosixPath(name)
                if path.parent != parent:
                    continue
                if path.name.startswith(WHITEOUT):
                    present.discard(path.name.removeprefix(WHITEOUT))
                else:
                    present.add(path.name)
        return tuple(sorted(present - {OPAQUE}))

    @contextmanager
    def open(self, path: str) -> Iterator[IO[bytes] | None]:
        """The file at `path` as the image shows it, streamed out of its layer; None when the image has none."""
        owner = self._owner(path)
        if owner is None:
            yield None
            return
        with (
            tarfile.open(self.archive) as outer,
            _opened(outer, self.layers[owner]) as data,
            tarfile.open(fileobj=data) as tar,
        ):
            member = next(info for info in tar.getmembers() if _member(info.name) == path)
            yield tar.extractfile(member)


@dataclass(frozen=True, kw_only=True)
class FileFacts:
    size: int
    sha256: str
    contains: bool
    """Whether the bytes asked for occur in the file."""


def file_facts(image: ExportedImage, path: str, *, needle: bytes = b"") -> FileFacts | None:
    """Size, SHA-256 and whether `needle` occurs in it, of one file of the image, read in one pass."""
    with image.open(path) as data:
        if data is None:
            return None
        digest, size, found, tail = hashlib.sha256(), 0, not needle, b""
        while chunk := data.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if needle and not found:
                window = tail + chunk
                found = needle in window
                tail = window[-len(needle) :]
    return FileFacts(size=size, sha256=digest.hexdigest(), contains=found)


@contextmanager
def _opened(tar: tarfile.TarFile, name: str) -> Iterator[IO[bytes]]:
    member = tar.extractfile(name)
    if member is None:
        raise EnvironmentProblem(f"{tar.name!s}: {name} is not a file of the archive")
    with member:
        yield member


def _read_json(tar: tarfile.TarFile, name: str) -> Any:
    with _opened(tar, name) as data:
        return json.load(data)


def _blob(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    return f"blobs/{algorithm}/{value}"


def _oci_manifest(tar: tarfile.TarFile, descriptor: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = _read_json(tar, _blob(descriptor["digest"]))
    if descriptor.get("mediaType") in _INDEX_TYPES or "manifests" in document:
        # A nested index (an image with attestations, or one per platform): its first image manifest.
        images = [m for m in document["manifests"] if "attestation-manifest" not in str(m.get("annotations", {}))]
        return _oci_manifest(tar, images[0])
    return document


def open_export(archive: Path) -> ExportedImage:
    """Read an exported image's configuration and layer list; a damaged or foreign archive is exit 3."""
    try:
        with tarfile.open(archive) as tar:
            names = set(tar.getnames())
            if "manifest.json" in names:
                [entry] = _read_json(tar, "manifest.json")[:1]
                return ExportedImage(
                    archive=archive, config=_read_json(tar, entry["Config"]), layers=tuple(entry["Layers"])
                )
            index = _read_json(tar, "index.json")
            manifest = _oci_manifest(tar, index["manifests"][0])
            return ExportedImage(
                archive=archive,
                config=_read_json(tar, _blob(manifest["config"]["digest"])),
                layers=tuple(_blob(layer["digest"]) for layer in manifest["layers"]),
            )
    except (OSError, tarfile.TarError, KeyError, IndexError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise EnvironmentProblem(f"{archive}: not an image buildx exported ({type(exc).__name__}: {first})") from None
