"""What a built image holds and does, read where the image is: the builder's binaries, the final image's.

An image in an engine (the local one, or a docker-driver builder's own, through its docker
context) is run there with python-on-whales, which talks to any engine a docker context
reaches (a unix socket, TCP with TLS, SSH). An exported image (harness.build.exported) is read
as files and never run: its binary would run on this machine, outside any container. What an
export cannot show (`--version`'s exit and output, the stand-in's build-info) is left unknown,
and the bytes of the binary are searched for this build's marker instead.

The final image has no shell, as distroless has none: nothing here runs anything in it but
its own entrypoint, and files are read out of the container (`docker cp`'s archive) rather
than hashed inside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import Container, DockerClient, DockerException

from harness.build.exported import ExportedImage, file_facts, open_export
from harness.knobs import INSTALL_DIR, SHIPPED_BINARY

RUN_TIMEOUT = 120
"""Seconds a one-shot run of the binary may take before it counts as hung."""
NOT_RUN_EXPORTED = "not run: the image was exported, and its binary is never run on this machine"


@dataclass(frozen=True, kw_only=True)
class InEngine:
    """An image in an engine, run there."""

    client: DockerClient
    tag: str


@dataclass(frozen=True, kw_only=True)
class InArchive:
    """An image exported as a tarball, read and never run."""

    path: Path
    tag: str


ImageAt = InEngine | InArchive


@dataclass(frozen=True, kw_only=True)
class ImageFacts:
    """The builder stage's image: what /usr/local/bin holds, and what the TARGETARCH binary says."""

    binaries: tuple[str, ...]
    version_output: str | None
    version_exit: int | None
    """None when nothing was run: the binary for TARGETARCH is not in the image, or the image was exported."""
    build_info: dict[str, object] | None
    binary_size_bytes: int | None = None
    shipped_sha256: str | None = None
    """SHA-256 of the file the final stage copies (for `build --stage final`), None where absent or not asked."""
    not_run: str | None = None
    """Why the binary, though there, was not run."""
    marker_in_binary: bool | None = None
    """Whether this build's marker occurs in the binary's bytes (read where it could not be run), None: not read."""


@dataclass(frozen=True, kw_only=True)
class FinalFacts:
    """The final (shipped) image: its binary, and the binary run as the image runs it (entrypoint and user)."""

    image: str
    user: str | None
    entrypoint: tuple[str, ...]
    binary_sha256: str | None
    """SHA-256 of /usr/local/bin/mas-cli in the image, None when it has none."""
    version_output: str | None
    version_exit: int | None
    build_info: dict[str, object] | None
    not_run: str | None = None
    marker_in_binary: bool | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "image": self.image,
            "user": self.user,
            "entrypoint": list(self.entrypoint),
            "binary": SHIPPED_BINARY,
            "binary_sha256": self.binary_sha256,
            "version_output": self.version_output,
            "version_exit": self.version_exit,
            "build_info": self.build_info,
            "not_run": self.not_run,
            "marker_in_binary": self.marker_in_binary,
        }


# -- in an engine ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _container(client: DockerClient, tag: str, command: list[str]) -> Iterator[Container]:
    """A container of the image running `command`, removed on any exit."""
    container = client.container.run(tag, command, detach=True)
    try:
        yield container
    finally:
        with contextlib.suppress(DockerException):
            client.container.remove(container, force=True, volumes=True)


def _exec(client: DockerClient, container: Container, command: list[str]) -> tuple[int, str]:
    try:
        return 0, str(client.container.execute(container, command) or "").strip()
    except DockerException as exc:
        return exc.return_code, str(exc.stdout or "").strip()


def _wait(client: DockerClient, container: Container) -> int:
    """The exit code of a one-shot container, killed once it has run for RUN_TIMEOUT."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while client.container.inspect(container).state.running:
        if time.monotonic() > deadline:
            client.container.kill(container)
            break
        time.sleep(0.1)
    return int(client.container.inspect(container).state.exit_code or 0)


def _stdout(client: DockerClient, container: Container) -> str:
    chunks = client.container.logs(container, stream=True)
    assert not isinstance(chunks, str)  # stream=True yields (source, bytes) pairs
    return b"".join(data for source, data in chunks if source == "stdout").decode(errors="replace").strip()


def _file_sha256(client: DockerClient, container: Container, path: str) -> str | None:
    """The SHA-256 of a file of the container, copied out (`docker cp`), None when it has no such file."""
    with tempfile.TemporaryDirectory(prefix="mas-harness-") as scratch:
        copy = Path(scratch) / "file"
        try:
            client.container.copy((container, path), copy)
        except DockerException:
            return None
        with copy.open("rb") as data:
            return hashlib.file_digest(data, "sha256").hexdigest()


def _builder_in_engine(at: InEngine, *, binary: str, shipped: str | None, want_build_info: bool) -> ImageFacts:
    client = at.client
    with _container(client, at.tag, ["sleep", "infinity"]) as container:
        _, listing = _exec(client, container, ["sh", "-c", f"ls -1 {INSTALL_DIR}"])
        binaries = tuple(sorted(name for name in listing.split() if name.startswith("mas-cli")))
        version_output = version_exit = None
        build_info = None
        size = None
        if binary in binaries:
            code, stat = _exec(client, container, ["stat", "-c", "%s", f"{INSTALL_DIR}{binary}"])
            size = int(stat) if code == 0 else None
            version_exit, version_output = _exec(client, container, [f"{INSTALL_DIR}{binary}", "--version"])
            if want_build_info:
                code, info = _exec(client, container, [f"{INSTALL_DIR}{binary}", "build-info"])
                build_info = json.loads(info) if code == 0 else None
        shipped_sha256 = _file_sha256(client, container, shipped) if shipped else None
    return ImageFacts(
        binaries=binaries,
        version_output=version_output,
        version_exit=version_exit,
        build_info=build_info,
        binary_size_bytes=size,
        shipped_sha256=shipped_sha256,
    )


def _run_entrypoint(client: DockerClient, tag: str, command: list[str]) -> tuple[int, str, str | None]:
    """The image's entrypoint run with `command` to its end: exit code, stdout, the shipped binary's SHA-256."""
    with _container(client, tag, command) as container:
        code = _wait(client, container)
        return code, _stdout(client, container), _file_sha256(client, container, SHIPPED_BINARY)


def _final_in_engine(at: InEngine, *, want_build_info: bool) -> FinalFacts:
    config = at.client.image.inspect(at.tag).config
    version_exit, version_output, binary_sha256 = _run_entrypoint(at.client, at.tag, ["--version"])
    build_info = None
    if want_build_info:
        info_exit, info_output, _ = _run_entrypoint(at.client, at.tag, ["build-info"])
        build_info = json.loads(info_output) if info_exit == 0 else None
    return FinalFacts(
        image=at.tag,
        user=config.user or None,
        entrypoint=tuple(config.entrypoint or ()),
        binary_sha256=binary_sha256,
        version_output=version_output,
        version_exit=version_exit,
        build_info=build_info,
    )


# -- exported ----------------------------------------------------------------------------------------------------


def _builder_in_archive(image: ExportedImage, *, binary: str, shipped: str | None, marker: str) -> ImageFacts:
    binaries = tuple(name for name in image.listdir(INSTALL_DIR) if name.startswith("mas-cli"))
    run = file_facts(image, f"{INSTALL_DIR}{binary}", needle=marker.encode()) if binary in binaries else None
    moved = file_facts(image, shipped) if shipped else None
    return ImageFacts(
        binaries=binaries,
        version_output=None,
        version_exit=None,
        build_info=None,
        binary_size_bytes=run.size if run else None,
        shipped_sha256=moved.sha256 if moved else None,
        not_run=NOT_RUN_EXPORTED if run else None,
        marker_in_binary=run.contains if run and marker else None,
    )


def _final_in_archive(image: ExportedImage, *, tag: str, marker: str) -> FinalFacts:
    shipped = file_facts(image, SHIPPED_BINARY, needle=marker.encode())
    return FinalFacts(
        image=tag,
        user=image.user,
        entrypoint=image.entrypoint,
        binary_sha256=shipped.sha256 if shipped else None,
        version_output=None,
        version_exit=None,
        build_info=None,
        not_run=NOT_RUN_EXPORTED,
        marker_in_binary=shipped.contains if shipped and marker else None,
    )


# -- where the image is -------------------------------------------------------------------------------------------


def inspect_image(at: ImageAt, *, binary: str, shipped: str | None, want_build_info: bool, marker: str) -> ImageFacts:
    """What the built builder image holds, and what its TARGETARCH binary says where it can be run.

    `binary` is the one to run (the TARGETARCH one); `shipped` the path whose hash the final stage's check needs;
    `marker` this build's VERGEN_GIT_DESCRIBE, looked for in the binary's bytes where it is not run.
    """
    if isinstance(at, InArchive):
        return _builder_in_archive(open_export(at.path), binary=binary, shipped=shipped, marker=marker)
    return _builder_in_engine(at, binary=binary, shipped=shipped, want_build_info=want_build_info)


def inspect_final_image(at: ImageAt, *, want_build_info: bool, marker: str) -> FinalFacts:
    """The final image run as users run it (its entrypoint, its user), its binary read out of it; or, exported, read."""
    if isinstance(at, InArchive):
        return _final_in_archive(open_export(at.path), tag=at.tag, marker=marker)
    return _final_in_engine(at, want_build_info=want_build_info)
