"""What a built image holds and does, read by running it with testcontainers: the builder's binaries, the final image's.

The final image has no shell, as distroless has none: nothing here runs anything in it but
its own entrypoint, and files are read out of the container (`docker cp`'s archive) rather
than hashed inside it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from python_on_whales import DockerException, docker

from harness.knobs import INSTALL_DIR, SHIPPED_BINARY

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

RUN_TIMEOUT = 120
"""Seconds a one-shot run of the binary may take before it counts as hung."""


@dataclass(frozen=True, kw_only=True)
class ImageFacts:
    """The builder stage's image: what /usr/local/bin holds, and what the TARGETARCH binary says."""

    binaries: tuple[str, ...]
    version_output: str | None
    version_exit: int | None
    """None when the binary for TARGETARCH is not in the image, so nothing was run."""
    build_info: dict[str, object] | None
    binary_size_bytes: int | None = None
    shipped_sha256: str | None = None
    """SHA-256 of the file the final stage copies (for `build --stage final`), None where absent or not asked."""


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
        }


def _container(tag: str, command: list[str]) -> DockerContainer:
    from testcontainers.core.config import testcontainers_config  # noqa: PLC0415  # only builds need it
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415

    # Ryuk, testcontainers' reaper, is an image to pull, which an air-gapped engine cannot; the
    # context manager removes the container itself.
    testcontainers_config.ryuk_disabled = True
    return DockerContainer(tag).with_command(command)


def _file_sha256(container: DockerContainer, path: str) -> str | None:
    """The SHA-256 of a file of the container, copied out (`docker cp`), None when it has no such file."""
    container_id = str(container.get_wrapped_container().id)
    with tempfile.TemporaryDirectory(prefix="mas-harness-") as scratch:
        copy = Path(scratch) / "file"
        try:
            docker.container.copy((container_id, path), copy)
        except DockerException:
            return None
        with copy.open("rb") as data:
            return hashlib.file_digest(data, "sha256").hexdigest()


@contextmanager
def _ran(tag: str, command: list[str]) -> Iterator[tuple[DockerContainer, int, str]]:
    """Run the image's entrypoint with `command` to its end: the container (for reading files), exit code, stdout."""
    with _container(tag, command) as container:
        wrapped = container.get_wrapped_container()
        status = int(wrapped.wait(timeout=RUN_TIMEOUT)["StatusCode"])
        yield container, status, wrapped.logs(stdout=True, stderr=False).decode().strip()


def inspect_image(tag: str, *, binary: str, shipped: str | None, want_build_info: bool) -> ImageFacts:
    """Run the built builder image with testcontainers and read what it holds.

    `binary` is the one to run (the TARGETARCH one); `shipped` the path whose hash the final stage's check needs.
    """
    with _container(tag, ["sleep", "infinity"]) as container:
        listing = container.exec(["sh", "-c", f"ls -1 {INSTALL_DIR}"])
        names = listing.output.decode().split()
        binaries = tuple(sorted(name for name in names if name.startswith("mas-cli")))
        version_output = version_exit = None
        build_info = None
        size = None
        if binary in binaries:
            stat = container.exec(["stat", "-c", "%s", f"{INSTALL_DIR}{binary}"])
            size = int(stat.output.decode().strip()) if stat.exit_code == 0 else None
            version = container.exec([f"{INSTALL_DIR}{binary}", "--version"])
            version_output, version_exit = version.output.decode().strip(), version.exit_code
            if want_build_info:
                info = container.exec([f"{INSTALL_DIR}{binary}", "build-info"])
                if info.exit_code == 0:
                    build_info = json.loads(info.output.decode())
        shipped_sha256 = _file_sha256(container, shipped) if shipped else None
    return ImageFacts(
        binaries=binaries,
        version_output=version_output,
        version_exit=version_exit,
        build_info=build_info,
        binary_size_bytes=size,
        shipped_sha256=shipped_sha256,
    )


def inspect_final_image(tag: str, *, want_build_info: bool) -> FinalFacts:
    """Run the final image as users run it (its entrypoint, its user) and read its binary out of it."""
    config = docker.image.inspect(tag).config
    with _ran(tag, ["--version"]) as (container, version_exit, version_output):
        binary_sha256 = _file_sha256(container, SHIPPED_BINARY)
    build_info = None
    if want_build_info:
        with _ran(tag, ["build-info"]) as (_, info_exit, info_output):
            build_info = json.loads(info_output) if info_exit == 0 else None
    return FinalFacts(
        image=tag,
        user=config.user or None,
        entrypoint=tuple(config.entrypoint or ()),
        binary_sha256=binary_sha256,
        version_output=version_output,
        version_exit=version_exit,
        build_info=build_info,
    )
