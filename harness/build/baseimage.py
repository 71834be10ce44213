"""An air-gapped stand-in for upstream's `docker.io/library/rust:<version>-<suite>` builder base.

No registry is reachable, so the image is made here: a debootstrap rootfs of the suite,
the host's own rustup toolchain laid out as the official image lays out its toolchain, and
`docker import`. BuildKit is then pointed at it with
`--build-context docker.io/library/rust:<v>-<suite>=docker-image://<local tag>`.

One module on purpose: what goes into the image (the inputs and their hash, which decides
reuse) and how it is laid out are one contract; split, a change to one half would silently
stale the other. What every debootstrapped image shares (the debootstrap, the archive, the
import, the safe removal of a rootfs) is harness.build.rootfs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from filelock import FileLock

from harness.build import rootfs as rootfs_image
from harness.build.rootfs import check_suite, sources_list
from harness.errors import EnvironmentProblem
from harness.proc import run

log = logging.getLogger("harness")

# Bump when the way the image is made changes, so existing images are rebuilt.
LAYOUT_VERSION = "1"
IMAGE_REPOSITORY = "mas-harness/rust"

# What buildpack-deps gives the official rust image that crate build scripts actually use:
# a C toolchain for cc-rs, pkg-config for -sys crates, git/curl for cargo and fetches,
# perl for vendored OpenSSL builds. Everything else is left to the Dockerfile's own apt-get.
PACKAGES = (
    "ca-certificates",
    "curl",
    "g++",
    "gcc",
    "git",
    "libc6-dev",
    "make",
    "perl",
    "pkg-config",
    "xz-utils",
)

RUSTUP_HOME = PurePosixPath("/usr/local/rustup")
CARGO_HOME = PurePosixPath("/usr/local/cargo")
IMAGE_PATH = "/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_ENV = (
    ("RUSTUP_HOME", str(RUSTUP_HOME)),
    ("CARGO_HOME", str(CARGO_HOME)),
    ("PATH", IMAGE_PATH),
    # Unlike the official image: a Dockerfile asking for another toolchain version
    # (`rustup target add --toolchain 1.93.0`) must fail, not silently download that
    # toolchain and build with a compiler the harness did not choose.
    ("RUSTUP_AUTO_INSTALL", "0"),
)
UPSTREAM_REPOSITORY = "docker.io/library/rust"

# The proxies rustup-init creates in the official image; each is a link to rustup.
RUSTUP_PROXIES = (
    "cargo",
    "cargo-clippy",
    "cargo-fmt",
    "cargo-miri",
    "clippy-driver",
    "rls",
    "rust-analyzer",
    "rust-gdb",
    "rust-gdbgui",
    "rust-lldb",
    "rustc",
    "rustdoc",
    "rustfmt",
)

# The HTML docs are over half the toolchain's size and no build reads them.
TOOLCHAIN_SKIP = (PurePosixPath("share/doc/rust/html"),)

# Cargo settings given by environment that decide how crates.io is reached.
CARGO_NETWORK_ENV_PREFIXES = ("CARGO_HTTP_", "CARGO_NET_", "CARGO_REGISTRIES_", "CARGO_REGISTRY_")

LABEL_PREFIX = "org.mas-harness.rust-base"
LABEL_SUITE = f"{LABEL_PREFIX}.suite"
LABEL_TOOLCHAIN = f"{LABEL_PREFIX}.toolchain"
LABEL_INPUTS = f"{LABEL_PREFIX}.inputs-sha256"


@dataclass(frozen=True, kw_only=True)
class LocalRustImage:
    tag: str  # local image tag, e.g. "mas-harness/rust:1.95.0-trixie"
    rustc_version: str  # the local toolchain's version, e.g. "1.95.0"
    suite: str  # "bookworm" | "trixie"
    reused: bool  # True when an existing image was reused

    @property
    def upstream_ref(self) -> str:
        """The name upstream's builder stage uses for this image once its ARGs are expanded.

        Only RUSTC_VERSION equal to the local toolchain's version works: the build args
        expand into this name and into `rustup target add --toolchain ${RUSTC_VERSION}`.
        """
        return upstream_ref(self.rustc_version, self.suite)

    def build_contexts(self) -> dict[str, str]:
        """`build_contexts=` for `docker.buildx.build`: the upstream name served by this image."""
        return {self.upstream_ref: f"docker-image://{self.tag}"}


@dataclass(frozen=True, kw_only=True)
class HostToolchain:
    """The rustup toolchain the host's `rustc` resolves to."""

    version: str  # "1.95.0"
    host_triple: str  # "x86_64-unknown-linux-gnu"
    verbose_version: str  # full `rustc -vV`: names the exact build, commit hash included
    sysroot: Path
    rustup: Path

    @property
    def name(self) -> str:
        # The name rustup-init gives a toolchain installed by version, as in the official image.
        return toolchain_name(self.version, self.host_triple)


@dataclass(frozen=True, kw_only=True)
class ImageFile:
    """A small host file placed in the image, kept by content so it feeds the inputs hash."""

    path: PurePosixPath  # absolute path inside the image
    content: bytes


@dataclass(frozen=True, kw_only=True)
class ImageInputs:
    """Everything that decides the image's content, short of the toolchain's bytes."""

    suite: str
    packages: tuple[str, ...]
    toolchain_name: str
    toolchain_verbose_version: str
    files: tuple[ImageFile, ...]
    env: tuple[tuple[str, str], ...]

    def digest(self) -> str:
        # The toolchain is identified by `rustc -vV` (release and commit) rather than hashed:
        # reading 1.4 GB on every run would cost more than a rebuild saves.
        document = {
            "layout": LAYOUT_VERSION,
            "suite": self.suite,
            "packages": list(self.packages),
            "toolchain": self.toolchain_name,
            "rustc": self.toolchain_verbose_version,
            "files": {str(f.path): hashlib.sha256(f.content).hexdigest() for f in self.files},
            "env": dict(self.env),
        }
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def labels(self, rustc_version: str) -> dict[str, str]:
        return {
            LABEL_SUITE: self.suite,
            LABEL_TOOLCHAIN: rustc_version,
            LABEL_INPUTS: self.digest(),
        }


# --- pure helpers --------------------------------------------------------------------------


def parse_rustc_version(output: str) -> str:
    """`rustc 1.95.0 (59807616e 2026-04-14)` -> `1.95.0`."""
    match = re.match(r"rustc (\d+\.\d+\.\d+)(?:-\S+)?(?:\s|$)", output.strip())
    if match is None:
        raise EnvironmentProblem(f"cannot read a version from `rustc --version` output: {output.strip()!r}")
    return match.group(1)


def parse_host_triple(verbose_output: str) -> str:
    for line in verbose_output.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "host" and value.strip():
            return value.strip()
    raise EnvironmentProblem("`rustc -vV` names no host triple")


def toolchain_name(version: str, host_triple: str) -> str:
    return f"{version}-{host_triple}"


def image_tag(rustc_version: str, suite: str) -> str:
    return f"{IMAGE_REPOSITORY}:{rustc_version}-{suite}"


def toolchain_dir(name: str) -> PurePosixPath:
    return RUSTUP_HOME / "toolchains" / name


def rustup_settings(name: str) -> str:
    # Format 12 is what rustup 1.28/1.29 writes; older rustup would refuse to read it.
    return (
        'version = "12"\n'
        f'default_toolchain = "{name}"\n'
        'profile = "minimal"\n'
        'auto_self_update = "disable"\n'
        "\n"
        "[overrides]\n"
    )


def cargo_config_sources(env: Mapping[str, str], home: Path, root: Path) -> list[tuple[Path, PurePosixPath]]:
    """Host cargo config files and where each goes in the image, most specific first.

    `root` is the host's `/`, a parameter so tests can use a fake tree. A file found for the
    image's $CARGO_HOME is taken once: the host's effective CARGO_HOME wins over the other
    usual places. /.cargo/config.toml is read by cargo from every working directory, so it
    keeps its place.
    """
    home_dirs: list[Path] = []
    if env.get("CARGO_HOME"):
        home_dirs.append(root / env["CARGO_HOME"].lstrip("/"))
    home_dirs += [
        root / home.relative_to(home.anchor) / ".cargo",
        root / "usr/local/cargo",
        root / "etc/cargo",
    ]
    found: list[tuple[Path, PurePosixPath]] = []
    for directory in home_dirs:
        config = _first_existing(directory / "config.toml", directory / "config")
        if config is not None:
            found.append((config, CARGO_HOME / "config.toml"))
            break
    ancestor = _first_existing(root / ".cargo/config.toml", root / ".cargo/config")
    if ancestor is not None:
        found.append((ancestor, PurePosixPath("/.cargo/config.toml")))
    return found


def cargo_network_env(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(CARGO_NETWORK_ENV_PREFIXES)))


def upstream_ref(rustc_version: str, suite: str) -> str:
    return f"{UPSTREAM_REPOSITORY}:{rustc_version}-{suite}"


def import_changes(labels: Mapping[str, str], env: Sequence[tuple[str, str]]) -> list[str]:
    """Dockerfile instructions `docker import` applies, giving the official image's environment."""
    changes = [f"ENV {key}={json.dumps(value)}" for key, value in env]
    changes += [f"LABEL {key}={json.dumps(value)}" for key, value in sorted(labels.items())]
    changes.append('CMD ["bash"]')
    return changes


def _first_existing(*paths: Path) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


# --- host discovery ------------------------------------------------------------------------


def host_toolchain() -> HostToolchain:
    verbose = run("rustc", "-vV").stdout.decode()
    sysroot = Path(run("rustc", "--print", "sysroot").stdout.decode().strip())
    rustup = shutil.which("rustup")
    if rustup is None:
        raise EnvironmentProblem("`rustup` is not on PATH: the image needs the host's rustup to manage its toolchain")
    if not (sysroot / "lib/rustlib/multirust-channel-manifest.toml").is_file():
        # Without the manifest, rustup inside the image cannot tell which components it has.
        raise EnvironmentProblem(f"{sysroot} is not a rustup-managed toolchain; install Rust with rustup")
    return HostToolchain(
        version=parse_rustc_version(verbose.splitlines()[0]),
        host_triple=parse_host_triple(verbose),
        verbose_version=verbose,
        sysroot=sysroot,
        rustup=Path(rustup).resolve(),
    )


def host_ca_certificates(directory: Path = Path("/usr/local/share/ca-certificates")) -> list[ImageFile]:
    """Locally added trust anchors, so the image trusts what the host trusts.

    Where egress goes through a TLS-intercepting proxy, cargo in the build cannot reach
    crates.io without the proxy's CA; Debian's bundle alone is not enough.
    """
    if not directory.is_dir():
        return []
    return [
        ImageFile(path=PurePosixPath("/usr/local/share/ca-certificates") / p.name, content=p.read_bytes())
        for p in sorted(directory.glob("*.crt"))
        if p.is_file()
    ]


def collect_inputs(suite: str, toolchain: HostToolchain) -> ImageInputs:
    env = dict(os.environ)
    files = [
        ImageFile(path=target, content=source.read_bytes())
        for source, target in cargo_config_sources(env, Path.home(), Path("/"))
    ]
    files += host_ca_certificates()
    files.append(ImageFile(path=PurePosixPath("/etc/apt/sources.list"), content=sources_list(suite).encode()))
    files.append(ImageFile(path=RUSTUP_HOME / "settings.toml", content=rustup_settings(toolchain.name).encode()))
    return ImageInputs(
        suite=suite,
        packages=PACKAGES,
        toolchain_name=toolchain.name,
        toolchain_verbose_version=toolchain.verbose_version,
        files=tuple(files),
        env=IMAGE_ENV + cargo_network_env(env),
    )


# --- building ------------------------------------------------------------------------------


def ensure_rust_base_image(suite: str, *, work_dir: Path) -> LocalRustImage:
    """Return a local image standing in for `rust:<version>-<suite>`, building it if needed."""
    check_suite(suite)
    toolchain = host_toolchain()
    inputs = collect_inputs(suite, toolchain)
    tag = image_tag(toolchain.version, suite)
    labels = inputs.labels(toolchain.version)

    work_dir.mkdir(parents=True, exist_ok=True)
    # Another run may be building the same tag; the lock makes the loser reuse its result.
    with FileLock(work_dir / f"rust-base-{toolchain.version}-{suite}.lock"):
        if rootfs_image.image_matches(tag, labels):
            log.info("reusing %s", tag)
            return LocalRustImage(tag=tag, rustc_version=toolchain.version, suite=suite, reused=True)
        build_dir = work_dir / f"rust-base-{toolchain.version}-{suite}"
        rootfs_image.remove_tree(build_dir)
        build_dir.mkdir()
        try:
            _build(build_dir, toolchain=toolchain, inputs=inputs, tag=tag)
        finally:
            rootfs_image.remove_tree(build_dir)
    return LocalRustImage(tag=tag, rustc_version=toolchain.version, suite=suite, reused=False)


def _build(build_dir: Path, *, toolchain: HostToolchain, inputs: ImageInputs, tag: str) -> None:
    suite, labels = inputs.suite, inputs.labels(toolchain.version)
    rootfs = build_dir / "rootfs"
    rootfs_image.debootstrap(suite, rootfs, packages=inputs.packages)
    _install_toolchain(rootfs, toolchain)
    for item in inputs.files:
        target = _inside(rootfs, item.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.content)
    if any(f.path.parent == PurePosixPath("/usr/local/share/ca-certificates") for f in inputs.files):
        run("chroot", rootfs, "update-ca-certificates")
    rootfs_image.trim(rootfs)

    archive = build_dir / "rootfs.tar"
    rootfs_image.archive(rootfs, archive)
    shutil.rmtree(rootfs)  # halve peak disk use before the daemon copies the archive
    rootfs_image.import_image(archive, tag=tag, changes=import_changes(labels, inputs.env))


def _install_toolchain(rootfs: Path, toolchain: HostToolchain) -> None:
    destination = _inside(rootfs, toolchain_dir(toolchain.name))
    destination.parent.mkdir(parents=True)
    skipped = {toolchain.sysroot / p for p in TOOLCHAIN_SKIP}

    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if Path(directory) / n in skipped}

    shutil.copytree(toolchain.sysroot, destination, symlinks=True, ignore=ignore, copy_function=_link_or_copy)

    bin_dir = _inside(rootfs, CARGO_HOME / "bin")
    bin_dir.mkdir(parents=True)
    shutil.copy2(toolchain.rustup, bin_dir / "rustup")
    for proxy in RUSTUP_PROXIES:
        (bin_dir / proxy).symlink_to("rustup")


def _link_or_copy(source: str, destination: str) -> None:
    # Hard links make the 600 MB copy free when the work dir shares the toolchain's filesystem;
    # nothing in the rootfs is modified in place, so the host toolchain is safe.
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _inside(rootfs: Path, path: PurePosixPath) -> Path:
    return rootfs / path.relative_to("/")
