"""Debian root filesystems made with debootstrap and imported as local images: what every local base image shares.

No registry is reachable, so the images upstream's Dockerfile starts from are made here
(harness.build.baseimage for the Rust builder, harness.build.runtimeimage for the
distroless runtime and plain Debian). Each is a debootstrap of a suite, laid out, archived
and `docker import`ed; an image is reused while its labels still match its inputs.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from python_on_whales import docker
from python_on_whales.exceptions import DockerException

from harness.errors import BadInput, EnvironmentProblem
from harness.proc import run

log = logging.getLogger("harness")

SUITES = ("bookworm", "trixie")
DEBIAN_VERSIONS = {"bookworm": "12", "trixie": "13"}
"""The release number distroless and upstream's `DEBIAN_VERSION` ARG give each suite."""
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"


def check_suite(suite: str) -> None:
    if suite not in SUITES:
        raise BadInput(f"unsupported Debian suite {suite!r}: use one of {', '.join(SUITES)}")


def sources_list(suite: str) -> str:
    """The suite, its updates and its security archive, as a Debian image has them.

    debootstrap only writes the main suite; without -updates and -security, packages the
    Dockerfile installs would be older than those of the official image.
    """
    check_suite(suite)
    return (
        f"deb {MIRROR} {suite} main\ndeb {MIRROR} {suite}-updates main\ndeb {SECURITY_MIRROR} {suite}-security main\n"
    )


def debootstrap(suite: str, rootfs: Path, *, packages: Sequence[str]) -> None:
    log.info("debootstrap %s into %s", suite, rootfs)
    run("debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, rootfs, MIRROR)


def trim(rootfs: Path) -> None:
    """Drop what a container gets from the engine anyway, or what only wastes image space."""
    for pattern in ("var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb"):
        for path in rootfs.glob(pattern):
            if path.is_file():
                path.unlink()
    # The engine mounts its own resolv.conf; the host's must not leak into the image.
    resolv = rootfs / "etc/resolv.conf"
    if resolv.exists() or resolv.is_symlink():
        resolv.unlink()
    resolv.write_text("")


def archive(rootfs: Path, tarball: Path, *, exclude: Sequence[str] = ()) -> None:
    """A tar of the rootfs as an image holds it; `exclude` names paths (as `./usr/bin/sh`) left out."""
    # Numeric owners: names would be mapped through the host's /etc/passwd, not the rootfs's.
    excluded = [f"--exclude={path}" for path in exclude]
    run("tar", "--numeric-owner", *excluded, "-C", rootfs, "-cf", tarball, ".")


def import_image(tarball: Path, *, tag: str, changes: Sequence[str]) -> None:
    try:
        docker.image.import_(tarball, tag=tag, changes=list(changes))
    except DockerException as exc:
        raise EnvironmentProblem(f"docker import of {tag} failed: {exc.stderr or exc}") from exc
    log.info("imported %s", tag)


def image_matches(tag: str, labels: Mapping[str, str]) -> bool:
    """The image exists and carries these labels: it was made from the same inputs."""
    if not docker.image.exists(tag):
        return False
    found = docker.image.inspect(tag).config.labels or {}
    return all(found.get(key) == value for key, value in labels.items())


def remove_tree(path: Path, mounts: Callable[[], list[str]] | None = None) -> None:
    """rmtree, refusing to descend into anything still mounted in a chroot.

    debootstrap mounts /proc and /sys in the target and unmounts them on exit; if it was
    killed, deleting through those mounts would attack the host's own /proc and /sys.
    """
    if not path.exists():
        return
    list_mounts = mounts or _mount_points
    resolved = path.resolve()
    for mountpoint in sorted(list_mounts(), reverse=True):
        if Path(mountpoint).is_relative_to(resolved):
            run("umount", "--lazy", mountpoint)
    still = [m for m in list_mounts() if Path(m).is_relative_to(resolved)]
    if still:
        raise EnvironmentProblem(f"cannot remove {path}: {still[0]} is still mounted; unmount it by hand")
    shutil.rmtree(path)


def _mount_points() -> list[str]:
    # Read the kernel's table directly: it lists bind and pseudo mounts that `mount` tools may hide.
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        field = line.split(" ")[4]
        # mountinfo escapes space, tab, newline and backslash as octal.
        points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field))
    return points
