"""Upstream checkouts: a cache of partial, shallow fetches shared by concurrent runs.

Modelled on pre-commit's store: one bare repository per upstream source under
the cache directory, looked up without a lock, and on a miss fetched under an
exclusive file lock (another run may have fetched it meanwhile, so look again).
Runs never patch inside the cache: `checkout()` makes a separate worktree.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from filelock import FileLock

from harness.errors import CommandFailed, UpstreamError
from harness.proc import git, run

log = logging.getLogger("harness")

SourceKind = Literal["url", "path", "bundle"]
_SHA = re.compile(r"^[0-9a-f]{40}$")
_TRAILER = re.compile(r"^upstream-commit:\s*([0-9a-f]{40})\s*$", re.MULTILINE)
DOCKERFILE = "Dockerfile"
CARGO_TOML = "Cargo.toml"
# `scheme://...`, or git's `transport::address`, which runs a remote helper (`ext::` runs any command).
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)(://|::)")
_ALLOWED_SCHEMES = ("https", "ssh", "git", "file", "git+ssh", "ssh+git")


@dataclass(frozen=True, kw_only=True)
class UpstreamSource:
    """Where upstream comes from: a git URL, a local repository, or a bundle file."""

    location: str
    kind: SourceKind

    @classmethod
    def parse(cls, text: str) -> UpstreamSource:
        scheme = _URL_SCHEME.match(text)
        if scheme is not None or text.startswith("-"):
            if scheme is None or scheme.group(2) != "://" or scheme.group(1).lower() not in _ALLOWED_SCHEMES:
                raise UpstreamError(
                    f"upstream {text!r} is not allowed: name an https://, ssh://, git:// or file:// URL, "
                    "user@host:path, a local repository or a bundle"
                )
            return cls(location=text, kind="url")
        if re.match(r"^[\w.-]+@[\w.-]+:", text):
            return cls(location=text, kind="url")
        path = Path(text).expanduser()
        if path.is_file():
            with path.open("rb") as handle:
                signature = handle.readline()
            if signature not in (b"# v2 git bundle\n", b"# v3 git bundle\n"):
                raise UpstreamError(f"upstream {text} is a file but not a git bundle")
            return cls(location=str(path.resolve()), kind="bundle")
        if path.is_dir():
            try:
                git("rev-parse", "--git-dir", cwd=path)
            except CommandFailed:
                raise UpstreamError(f"upstream {text} is a directory but not a git repository") from None
            return cls(location=str(path.resolve()), kind="path")
        raise UpstreamError(f"upstream {text} is neither a URL nor an existing repository or bundle")

    @property
    def fetch_url(self) -> str:
        # file:// makes git use the pack protocol, so --depth and --filter take effect for local paths too.
        return f"file://{self.location}" if self.kind == "path" else self.location

    @property
    def cache_key(self) -> str:
        digest = hashlib.sha256(self.location.encode()).hexdigest()[:16]
        stem = re.sub(r"[^A-Za-z0-9]+", "-", self.location.rstrip("/").rsplit("/", 1)[-1]).strip("-")
        return f"{stem or 'upstream'}-{digest}"


@dataclass(frozen=True, kw_only=True)
class ResolvedRef:
    ref: str
    commit: str
    """The commit in the source as given (a repackaged bundle has its own commit ids)."""
    upstream_commit: str
    """Upstream's own commit id: the `upstream-commit:` trailer when present, else `commit`."""
    dockerfile_blob: str
    cargo_toml_blob: str | None = None
    """The top-level Cargo.toml (upstream's `[profile.release]`), None when the ref has none."""


class UpstreamCache:
    def __init__(self, root: Path, source: UpstreamSource) -> None:
        self.root = root
        self.source = source
        self.repo = root / "repos" / f"{source.cache_key}.git"
        self._lock = FileLock(str(root / "repos" / f"{source.cache_key}.lock"))

    # -- repository -----------------------------------------------------------------------------

    def _git(self, *args: str) -> str:
        return git(f"--git-dir={self.repo}", *args)

    def _ensure_repo(self) -> None:
        if (self.repo / "HEAD").exists():
            return
        self.repo.parent.mkdir(parents=True, exist_ok=True)
        staging = self.repo.with_suffix(".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        git("init", "--quiet", "--bare", str(staging))
        git(f"--git-dir={staging}", "remote", "add", "origin", self.source.fetch_url)
        # Publish atomically: a run that sees HEAD sees a complete repository.
        staging.rename(self.repo)

    def _local_commit(self, ref: str) -> str | None:
        candidates = [f"refs/tags/{ref}", f"refs/remotes/origin/{ref}"]
        if _SHA.match(ref):
            candidates.insert(0, ref)
        for candidate in candidates:
            out = run(
                "git",
                f"--git-dir={self.repo}",
                "rev-parse",
                "--verify",
                "--quiet",
                f"{candidate}^{{commit}}",
                check=False,
            )
            if out.returncode == 0:
                return out.stdout.decode().strip()
        return None

    def _remote_refspec(self, ref: str) -> str | None:
        """Map a tag or branch name to a fetch refspec, asking the remote (no clone needed)."""
        listing = self.ls_remote(f"refs/tags/{ref}", f"refs/heads/{ref}")
        if f"refs/tags/{ref}" in listing:
            return f"+refs/tags/{ref}:refs/tags/{ref}"
        if f"refs/heads/{ref}" in listing:
            return f"+refs/heads/{ref}:refs/remotes/origin/{ref}"
        return None

    def ls_remote(self, *patterns: str) -> dict[str, str]:
        """Ref name -> object id on the remote, peeled tags included as `name^{}`."""
        self._ensure_repo()
        try:
            out = self._git("ls-remote", "origin", *patterns)
        except CommandFailed as exc:
            raise UpstreamError(f"cannot list refs of upstream {self.source.location}: {exc}") from None
        refs: dict[str, str] = {}
        for line in out.splitlines():
            oid, _, name = line.partition("\t")
            refs[name] = oid
        return refs

    def _fetch(self, ref: str) -> None:
        if self.source.kind == "bundle":
            # A bundle cannot be fetched by commit or filtered; it is local and small, so take all of it.
            self._git("fetch", "--quiet", "origin", "+refs/tags/*:refs/tags/*", "+refs/heads/*:refs/remotes/origin/*")
            return
        refspec = self._remote_refspec(ref)
        if refspec is None and not _SHA.match(ref):
            raise UpstreamError(f"unknown ref {ref!r}: no such tag or branch in upstream {self.source.location}")
        # Blobless and shallow: a Dockerfile check needs one commit's trees, and the
        # blobs it reads are fetched on demand by the promisor remote.
        args = ["fetch", "--quiet", "--depth=1", "--filter=blob:none", "origin", refspec or ref]
        try:
            self._git(*args)
        except CommandFailed as exc:
            raise UpstreamError(f"cannot fetch {ref!r} from upstream {self.source.location}: {exc}") from None

    def resolve(self, ref: str, *, refresh: bool = False) -> ResolvedRef:
        """Make `ref` available in the cache (fetching only on a miss) and describe it."""
        if not ref or ref.startswith("-"):
            raise UpstreamError(f"invalid ref {ref!r}")
        self.root.mkdir(parents=True, exist_ok=True)
        commit = None if refresh else (self._local_commit(ref) if (self.repo / "HEAD").exists() else None)
        if commit is None:
            with self._lock:
                self._ensure_repo()
                commit = None if refresh else self._local_commit(ref)
                if commit is None:
                    log.info("fetching %s from %s", ref, self.source.location)
                    self._fetch(ref)
                    commit = self._local_commit(ref)
        if commit is None:
            raise UpstreamError(f"unknown ref {ref!r} in upstream {self.source.location}")
        blob = run(
            "git", f"--git-dir={self.repo}", "rev-parse", "--verify", "--quiet", f"{commit}:{DOCKERFILE}", check=False
        )
        if blob.returncode != 0:
            raise UpstreamError(f"{ref} ({commit[:12]}) has no {DOCKERFILE} at the top of its tree")
        cargo = run(
            "git", f"--git-dir={self.repo}", "rev-parse", "--verify", "--quiet", f"{commit}:{CARGO_TOML}", check=False
        )
        message = self._git("log", "-1", "--format=%B", commit)
        trailer = _TRAILER.search(message)
        return ResolvedRef(
            ref=ref,
            commit=commit,
            upstream_commit=trailer.group(1) if trailer else commit,
            dockerfile_blob=blob.stdout.decode().strip(),
            cargo_toml_blob=cargo.stdout.decode().strip() if cargo.returncode == 0 else None,
        )

    def tags_reachable_from(self, commit: str) -> list[str]:
        """Version-like tags (`v...`) on `commit` or in its fetched history (`git tag --merged`).

        A shallow fetch has no history behind the commit, so there only a tag on
        the commit itself is found.
        """
        return self._git("tag", "--list", "--merged", commit, "v[0-9]*").split()

    def read_blob(self, blob: str) -> bytes:
        # With a blobless cache this is where the one blob is fetched, on demand.
        return run("git", f"--git-dir={self.repo}", "cat-file", "blob", blob).stdout

    def local_blob(self, blob: str) -> str | None:
        """The full id of `blob` (an id or an unambiguous prefix) if the cache already holds it.

        Never fetches: a blobless cache would otherwise ask the remote for any id it is shown.
        """
        if not re.fullmatch(r"[0-9a-f]{4,40}", blob) or not (self.repo / "HEAD").exists():
            return None
        found = run(
            "git",
            f"--git-dir={self.repo}",
            "rev-parse",
            "--verify",
            "--quiet",
            f"{blob}^{{blob}}",
            check=False,
            env={"GIT_NO_LAZY_FETCH": "1"},
        )
        return found.stdout.decode().strip() if found.returncode == 0 else None

    # -- worktrees ------------------------------------------------------------------------------

    def checkout(self, resolved: ResolvedRef, dest: Path, *, sparse: tuple[str, ...] | None = None) -> Path:
        """Check `resolved` out into `dest`, a worktree of the cache: patch there, never in the cache.

        `sparse` limits the files written (and, with a blobless cache, fetched).
        """
        if dest.exists() and any(dest.iterdir()):
            raise UpstreamError(f"checkout destination {dest} exists and is not empty")
        with self._lock:
            self._git("worktree", "prune")
            self._git("worktree", "add", "--quiet", "--detach", "--no-checkout", str(dest), resolved.commit)
        if sparse:
            git("sparse-checkout", "set", "--no-cone", *(f"/{p}" for p in sparse), cwd=dest)
        git("reset", "--quiet", "--hard", resolved.commit, cwd=dest)
        return dest

    def remove_checkout(self, dest: Path) -> None:
        with self._lock:
            self._git("worktree", "remove", "--force", str(dest))
