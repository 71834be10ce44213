"""Air-gapped stand-ins for the final stage's base, `gcr.io/distroless/cc-debian<N>:nonroot`, and a plain Debian.

No registry is reachable, so one debootstrap of the suite makes two local images:

- `mas-harness/distroless-cc:debian<N>`: what the final stage runs on. Like distroless cc
  it has glibc, libgcc, libstdc++, OpenSSL and the CA bundle, the user `nonroot` (65532)
  it runs as, and no shell: a final stage that needed one fails here as it would there.
  Unlike distroless it keeps dpkg, apt and coreutils (minbase), which nothing runs.
- `mas-harness/debian:<suite>`: the same rootfs, shell and root user kept, for images
  the tests build FROM it (the PostgreSQL service of the compose test).

BuildKit is pointed at the first with `--build-context
gcr.io/distroless/cc-debian13:nonroot=docker-image://mas-harness/distroless-cc:debian13`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness.build import rootfs as rootfs_image
from harness.build.rootfs import DEBIAN_VERSIONS, check_suite, sources_list

log = logging.getLogger("harness")

# Bump when the way the images are made changes, so existing images are rebuilt.
LAYOUT_VERSION = "1"
RUNTIME_REPOSITORY = "mas-harness/distroless-cc"
DEBIAN_REPOSITORY = "mas-harness/debian"
DISTROLESS_PREFIX = "gcr.io/distroless/"

# minbase already brings glibc, libgcc-s1 and libstdc++6; ca-certificates brings OpenSSL's libssl.
PACKAGES = ("ca-certificates",)
NONROOT_UID = 65532
NONROOT_HOME = "/home/nonroot"
PASSWD_LINE = f"nonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:{NONROOT_HOME}:/sbin/nologin\n"
GROUP_LINE = f"nonroot:x:{NONROOT_UID}:\n"
# Every spelling, merged /usr or not: a name that is absent is simply not matched.
SHELLS = tuple(f"./{d}/{s}" for d in ("bin", "usr/bin") for s in ("sh", "bash", "rbash", "dash"))
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

LABEL_PREFIX = "org.mas-harness.runtime-base"
LABEL_SUITE = f"{LABEL_PREFIX}.suite"
LABEL_INPUTS = f"{LABEL_PREFIX}.inputs-sha256"


@dataclass(frozen=True, kw_only=True)
class LocalRuntimeImage:
    tag: str
    """The distroless stand-in, e.g. `mas-harness/distroless-cc:debian13`."""
    debian_tag: str
    """The plain Debian image of the same rootfs, e.g. `mas-harness/debian:trixie`."""
    suite: str
    reused: bool

    @property
    def debian_version(self) -> str:
        return DEBIAN_VERSIONS[self.suite]

    def serves(self, image: str) -> bool:
        """Whether this image stands in for `image`: a distroless image of the same Debian release."""
        return image.startswith(DISTROLESS_PREFIX) and f"-debian{self.debian_version}:" in image


def runtime_tag(suite: str) -> str:
    return f"{RUNTIME_REPOSITORY}:debian{DEBIAN_VERSIONS[suite]}"


def debian_tag(suite: str) -> str:
    return f"{DEBIAN_REPOSITORY}:{suite}"


def inputs_digest(suite: str) -> str:
    """What decides the images' content; an image whose label differs is made again."""
    document = {
        "layout": LAYOUT_VERSION,
        "suite": suite,
        "packages": list(PACKAGES),
        "passwd": PASSWD_LINE,
        "group": GROUP_LINE,
        "shells": list(SHELLS),
        "sources": sources_list(suite),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def labels(suite: str) -> dict[str, str]:
    return {LABEL_SUITE: suite, LABEL_INPUTS: inputs_digest(suite)}


def runtime_changes(image_labels: Mapping[str, str]) -> list[str]:
    """What distroless's nonroot images set: the user by id, its home as working directory, the CA bundle."""
    return [
        f"USER {NONROOT_UID}",
        f"WORKDIR {NONROOT_HOME}",
        f"ENV PATH={json.dumps(PATH)}",
        'ENV SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt"',
        *(f"LABEL {key}={json.dumps(value)}" for key, value in sorted(image_labels.items())),
    ]


def debian_changes(image_labels: Mapping[str, str]) -> list[str]:
    return [
        f"ENV PATH={json.dumps(PATH)}",
        *(f"LABEL {key}={json.dumps(value)}" for key, value in sorted(image_labels.items())),
        'CMD ["bash"]',
    ]


def ensure_runtime_image(suite: str, *, work_dir: Path) -> LocalRuntimeImage:
    """Return the local distroless stand-in (and plain Debian) of `suite`, making them if needed."""
    check_suite(suite)
    tag, plain = runtime_tag(suite), debian_tag(suite)
    wanted = labels(suite)
    work_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(work_dir / f"runtime-base-{suite}.lock"):
        if rootfs_image.image_matches(tag, wanted) and rootfs_image.image_matches(plain, wanted):
            log.info("reusing %s and %s", tag, plain)
            return LocalRuntimeImage(tag=tag, debian_tag=plain, suite=suite, reused=True)
        build_dir = work_dir / f"runtime-base-{suite}"
        rootfs_image.remove_tree(build_dir)
        build_dir.mkdir()
        try:
            _build(build_dir, suite=suite, tag=tag, plain=plain, image_labels=wanted)
        finally:
            rootfs_image.remove_tree(build_dir)
    return LocalRuntimeImage(tag=tag, debian_tag=plain, suite=suite, reused=False)


def _build(build_dir: Path, *, suite: str, tag: str, plain: str, image_labels: Mapping[str, str]) -> None:
    rootfs = build_dir / "rootfs"
    rootfs_image.debootstrap(suite, rootfs, packages=PACKAGES)
    (rootfs / "etc/apt/sources.list").write_text(sources_list(suite))
    with (rootfs / "etc/passwd").open("a") as passwd:
        passwd.write(PASSWD_LINE)
    with (rootfs / "etc/group").open("a") as group:
        group.write(GROUP_LINE)
    home = rootfs / NONROOT_HOME.lstrip("/")
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    # By number: the host has no user 65532, and the archive keeps numeric owners.
    os.chown(home, NONROOT_UID, NONROOT_UID)
    rootfs_image.trim(rootfs)

    full = build_dir / "debian.tar"
    rootfs_image.archive(rootfs, full)
    rootfs_image.import_image(full, tag=plain, changes=debian_changes(image_labels))
    full.unlink()
    shell_less = build_dir / "runtime.tar"
    rootfs_image.archive(rootfs, shell_less, exclude=SHELLS)
    rootfs_image.import_image(shell_less, tag=tag, changes=runtime_changes(image_labels))
