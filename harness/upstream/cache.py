"""Upstream checkouts: a cache of partial, shallow fetches shared by concurrent runs.

Modelled on pre-commit's store: one bare repository per upstream source under
the cache directory, looked up without a lock, and on a miss fetched under an
exclusive file lock (another run may have fetched it meanwhile, so look again).
Runs never patch inside the cache: `checkout()` makes a separate worktree.

The cache holds objects, never answers: every run asks the remote where its refs
point now (one `git ls-remote` for all the refs of the run, remembered for the rest
of it), reuses what it already holds and fetches only what is missing, so a branch
that moved or a tag moved upstream is seen on a warm cache as on a cold one. An
`offline` cache answers from what it holds and never asks the remote.

It is one module, a little over 400 lines, because the lookup, the lock and the fetch
are one protocol: split apart, each piece would have to trust the others' invariants
(look again under the lock, never answer from a ref the run did not resolve).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import shutil
import stat
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config.run import Run
from harness.errors import CommandFailed, ToolFailed, UpstreamError
from harness.files import MAX_INPUT_BYTES
from harness.proc import git
from harness.proc import run as run_process
from harness.upstream.source import UpstreamSource, WantedRef, parse_ref

if TYPE_CHECKING:
    from filelock import FileLock

log = logging.getLogger("harness")

_TRAILER = re.compile(r"^upstream-commit:\s*([0-9a-f]{40})\s*$", re.MULTILINE)
DOCKERFILE = "Dockerfile"
CARGO_TOML = "Cargo.toml"

_TAGS, _BRANCHES = "refs/tags/", "refs/remotes/origin/"
# Never ask a promisor remote for an object behind the caller's back: a miss is answered here, in one fetch.
_NO_LAZY_FETCH = {"GIT_NO_LAZY_FETCH": "1"}
_GIT_LOCK_FILES = ("shallow.lock", "packed-refs.lock", "config.lock", "HEAD.lock", "FETCH_HEAD.lock")
"""What git locks at the top of a bare repository while it writes there (and leaves behind when it is killed), besides
the `refs/**/*.lock` of each ref it updates."""
# A fetch may start git's housekeeping (gc, maintenance), by default in the background, after the fetch and its
# cache lock are gone: in the foreground it stays under the lock, and a lock file in the repository older than a run
# holding the cache lock is always a stale one.
_HOUSEKEEPING_UNDER_THE_LOCK = ("-c", "gc.autoDetach=false", "-c", "maintenance.autoDetach=false")
DAMAGED_SUFFIX = ".damaged"
"""A damaged repository of the cache is set aside under its name with this suffix (the last one only)."""


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
    tags: tuple[str, ...] = ()
    """Every tag on `commit`, as the remote lists them (the cache's own when offline): a pin of any of them
    vouches for this commit, however the ref was spelled."""


@dataclass(frozen=True, kw_only=True)
class _LocalRef:
    oid: str
    peeled: str
    """The commit a tag object points at; `oid` itself for a ref that points at a commit."""


class UpstreamCache:
    def __init__(self, root: Path, source: UpstreamSource, *, offline: bool = False) -> None:
        self.root = root
        self.source = source
        self.offline = offline
        """Answer from the cache alone: no `git ls-remote`, no fetch, refs as they were last fetched."""
        self.repo = root / "repos" / f"{source.cache_key}.git"
        # One run's view of the remote, asked once and reused by every ref of the run.
        self._remote: dict[str, str] | None = None
        self._resolved: dict[str, ResolvedRef] = {}
        # Blobs are named by their content: once read, they are the same bytes for the rest of the run.
        self._blobs: dict[str, bytes] = {}
        # Looked at for damage once a run: what the run itself then writes is written whole, under the lock.
        self._looked_at = False

    # -- repository -----------------------------------------------------------------------------

    @cached_property
    def _lock(self) -> FileLock:
        # Imported here: only a fetch or a checkout takes it, and commands such as `status` never do.
        from filelock import FileLock  # noqa: PLC0415

        return FileLock(str(self.root / "repos" / f"{self.source.cache_key}.lock"))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The cache lock, with what a run killed while holding it left undone: its git lock files cleared.

        Every run writes the cache's repository under this lock, so a git lock file older
        than the moment this run took it belongs to a run that is gone: git itself would
        refuse to go on ("remove the file manually") for as long as it is there.
        """
        with self._lock:
            self._clear_stale_git_locks(since=time.time())
            yield

    def _clear_stale_git_locks(self, *, since: float) -> None:
        if not self.repo.is_dir():
            return
        refs = self.repo / "refs"
        candidates = [self.repo / name for name in _GIT_LOCK_FILES]
        candidates += sorted(refs.rglob("*.lock")) if refs.is_dir() else []
        cleared = []
        for path in candidates:
            try:
                status = path.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISREG(status.st_mode) and status.st_mtime < since:
                path.unlink(missing_ok=True)
                cleared.append(str(path.relative_to(self.repo)))
        if cleared:
            log.warning("upstream cache: removed %s, left by a run that was stopped", ", ".join(cleared))

    def _damage(self) -> str | None:
        """Why the cache's repository cannot be used as it is; None when it can, or when there is none yet."""
        if self.repo.is_symlink() and not self.repo.exists():
            return f"it is a symbolic link to {self.repo.readlink()}, which does not exist"
        if not self.repo.exists():
            return None
        if not self.repo.is_dir():
            return "it is not a directory"
        if not (self.repo / "HEAD").is_file():
            return "its HEAD is missing"
        return _pack_damage(self.repo / "objects" / "pack")

    def _heal(self) -> None:
        """A damaged repository (a run killed mid-write, a disk that filled up, a hand that slipped) is set aside
        and fetched again; the cache is a cache. Offline there is nothing to fetch it from: that is an error."""
        if self._looked_at:
            return
        why = self._damage()
        if why is None:
            self._looked_at = True
            return
        if self.offline:
            raise UpstreamError(
                f"the upstream cache's copy of {self.source.location} is damaged ({why}) and --offline fetches "
                "nothing: run once without --offline, which fetches it again"
            )
        with self._locked():
            why = self._damage()  # another run may have set it aside meanwhile
            if why is None:
                return
            aside = self.repo.with_name(self.repo.name + DAMAGED_SUFFIX)
            if aside.is_symlink() or aside.is_file():
                aside.unlink()
            elif aside.exists():
                shutil.rmtree(aside)
            self.repo.rename(aside)
            self._looked_at = True
            log.warning(
                "upstream cache: %s was damaged (%s); set aside as %s, fetching it again",
                self.repo.name,
                why,
                aside.name,
            )

    def _git(self, *args: str) -> str:
        return git(f"--git-dir={self.repo}", *args)

    def _query(self, *args: str, lines: Iterable[str] = ()) -> bytes:
        """A git query of the cache that never fetches: its stdout, or nothing where git says no.

        `lines` go to its standard input, one a line (the `--batch` commands read them).
        """
        proc = run_process(
            "git",
            f"--git-dir={self.repo}",
            *args,
            input_bytes="".join(f"{line}\n" for line in lines).encode(),
            check=False,
            env=_NO_LAZY_FETCH,
        )
        return proc.stdout if proc.returncode == 0 else b""

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

    def _local_refs(self) -> dict[str, _LocalRef]:
        """Every tag and fetched branch the cache holds, in one `git for-each-ref`."""
        if not (self.repo / "HEAD").exists():
            return {}
        out = self._query("for-each-ref", "--format=%(objectname) %(*objectname) %(refname)", _TAGS, _BRANCHES)
        refs = {}
        for line in out.decode().splitlines():
            oid, peeled, name = line.split(" ", 2)
            refs[name] = _LocalRef(oid=oid, peeled=peeled or oid)
        return refs

    def _present(self, oids: Iterable[str]) -> dict[str, tuple[str, int]]:
        """(type, size) of each object the cache holds, in one `git cat-file --batch-check`; absent ones left out."""
        wanted = list(dict.fromkeys(oids))
        if not wanted or not (self.repo / "HEAD").exists():
            return {}
        found = {}
        for line in self._query("cat-file", "--batch-check", lines=wanted).decode().splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[1] != "missing":
                found[fields[0]] = (fields[1], int(fields[2]))
        return found

    def remote_refs(self) -> dict[str, str]:
        """Ref name -> object id on the remote (tags and branches, peeled tags as `name^{}`), asked once per run."""
        if self.offline:
            raise UpstreamError(f"--offline: the refs of upstream {self.source.location} are not looked up")
        if self._remote is None:
            try:
                # The URL itself, not the cache's `origin`: listing needs no repository, and none is created for it.
                out = git("ls-remote", self.source.fetch_url, f"{_TAGS}*", "refs/heads/*")
            except CommandFailed as exc:
                raise UpstreamError(
                    f"cannot list the refs of upstream {self.source.location} ({exc}); "
                    "to use what the cache already holds, pass --offline"
                ) from None
            self._remote = {}
            for line in out.splitlines():
                oid, _, name = line.partition("\t")
                self._remote[name] = oid
        return self._remote

    def remote_tags(self) -> set[str]:
        return {name.removeprefix(_TAGS).removesuffix("^{}") for name in self.remote_refs() if name.startswith(_TAGS)}

    # -- resolving refs -------------------------------------------------------------------------

    @staticmethod
    def _where(wanted: WantedRef, refs: Mapping[str, str]) -> tuple[str, str] | None:
        """(cache ref name, object id) a name stands for in `refs`, named as on the remote: a tag, else a branch."""
        for remote, cached in (
            (f"{_TAGS}{wanted.base}", f"{_TAGS}{wanted.base}"),
            (f"refs/heads/{wanted.base}", f"{_BRANCHES}{wanted.base}"),
        ):
            if remote in refs:
                return cached, refs[remote]
        return None

    def _missing(self, wanted: Sequence[WantedRef], listing: Mapping[str, str]) -> list[str]:
        """Refspecs (or commit ids) to fetch: what the remote has and the cache does not, or has elsewhere."""
        local = self._local_refs()
        ids = [w.base for w in wanted if w.by_id]
        present = self._present(ids)
        specs = []
        for w in wanted:
            if w.by_id:
                if present.get(w.base, ("",))[0] != "commit":
                    specs.append(w.base)
                continue
            where = self._where(w, listing)
            if where is None:
                raise UpstreamError(
                    f"unknown ref {w.base!r}: no such tag or branch in upstream {self.source.location}{_short_id(w)}"
                )
            name, oid = where
            if name not in local or local[name].oid != oid:
                remote = name.replace(_BRANCHES, "refs/heads/", 1)
                specs.append(f"+{remote}:{name}")
        return list(dict.fromkeys(specs))

    def _fetch(self, specs: Sequence[str]) -> None:
        if self.source.kind == "bundle":
            # A bundle cannot be fetched by commit or filtered; it is local and small, so take all of it.
            specs = ["+refs/tags/*:refs/tags/*", "+refs/heads/*:refs/remotes/origin/*"]
            args = ["fetch", "--quiet", "origin", *specs]
        else:
            # Blobless and shallow: a Dockerfile check needs one commit's trees, and the
            # blobs it reads are fetched on demand (read_blobs).
            args = ["fetch", "--quiet", "--depth=1", "--filter=blob:none", "origin", *specs]
        log.info("fetching %s from %s", " ".join(specs), self.source.location)
        try:
            self._git(*_HOUSEKEEPING_UNDER_THE_LOCK, *args)
        except CommandFailed as exc:
            shown = " ".join(s.rsplit(":", 1)[-1].removeprefix(_TAGS).removeprefix(_BRANCHES) for s in specs)
            message = f"cannot fetch {shown} from upstream {self.source.location}: {exc}"
            if any(":" not in spec for spec in specs):
                # A commit id the user named, which the remote may simply not have.
                raise UpstreamError(message) from None
            # The remote listed these refs a moment ago: a fetch of them that fails is git's or the network's.
            raise ToolFailed(message) from None

    def _sync(self, wanted: Sequence[WantedRef]) -> None:
        """Make the cache hold what the remote says each ref is now, fetching what it lacks in one go."""
        listing = self.remote_refs()
        if not self._missing(wanted, listing):
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._ensure_repo()
            missing = self._missing(wanted, listing)  # another run may have fetched them meanwhile
            if missing:
                self._fetch(missing)

    def _refuse_non_commits(self, wanted: Sequence[WantedRef], local: Mapping[str, _LocalRef]) -> None:
        """A tag may point at a tree or a blob (git allows it): nothing there has a Dockerfile to check, nor history
        to peel; one batched query for every named ref of the run."""
        by_name = {n.replace(_BRANCHES, "refs/heads/", 1): r.oid for n, r in local.items()}
        named = {w.base: local[where[0]].oid for w in wanted if not w.by_id and (where := self._where(w, by_name))}
        if not named:
            return
        out = self._query("cat-file", "--batch-check=%(objecttype)", lines=[f"{oid}^{{}}" for oid in named.values()])
        for base, kind in zip(named, out.decode().splitlines(), strict=False):
            if kind in ("tree", "blob"):
                raise UpstreamError(
                    f"tag {base!r} of upstream {self.source.location} points at a {kind}, not a commit: there is no "
                    f"{DOCKERFILE} to check; name a release tag or a commit"
                )

    def _commit_of(self, wanted: WantedRef, local: Mapping[str, _LocalRef]) -> str:
        if wanted.by_id:
            start = wanted.base
        else:
            where = self._where(wanted, {n.replace(_BRANCHES, "refs/heads/", 1): r.oid for n, r in local.items()})
            if where is None:
                if self.offline:
                    raise UpstreamError(
                        f"{wanted.base!r} is not in the upstream cache and --offline fetches nothing: "
                        f"run once without --offline{_short_id(wanted)}"
                    )
                raise UpstreamError(
                    f"unknown ref {wanted.base!r} in upstream {self.source.location}{_short_id(wanted)}"
                )
            name, _ = where
            start = local[name].oid if wanted.suffix else local[name].peeled
            if not wanted.suffix:
                return start
        commit = self._query("rev-parse", "--verify", "--quiet", f"{start}{wanted.suffix}^{{commit}}").decode().strip()
        if not commit:
            if wanted.suffix:
                raise UpstreamError(
                    f"cannot resolve {wanted.ref!r}: the upstream cache holds one commit per ref, without the history "
                    f"{wanted.suffix!r} may need; name the commit itself (its full id) or its tag"
                )
            raise UpstreamError(
                f"commit {wanted.base} is not in the upstream cache and --offline fetches nothing: "
                "run once without --offline"
                if self.offline
                else f"commit {wanted.base} is not a commit of upstream {self.source.location}"
            )
        return commit

    def _tags_by_commit(self, local: Mapping[str, _LocalRef]) -> dict[str, list[str]]:
        """Commit -> the tags on it: the remote's word for every tag, peeled by the cache where it holds the tag."""
        tags: dict[str, list[str]] = {}
        if self.offline:
            pointing = {n: r.peeled for n, r in local.items() if n.startswith(_TAGS)}
        else:
            listing = self.remote_refs()
            pointing = {}
            for name, oid in listing.items():
                if not name.startswith(_TAGS) or name.endswith("^{}"):
                    continue
                held = local.get(name)
                pointing[name] = held.peeled if held and held.oid == oid else listing.get(f"{name}^{{}}", oid)
        for name, commit in pointing.items():
            tags.setdefault(commit, []).append(name.removeprefix(_TAGS))
        return tags

    def resolve_all(self, refs: Iterable[str]) -> dict[str, ResolvedRef]:
        """Describe every ref of a run: one `ls-remote`, at most one fetch, and a few batched git queries in all."""
        refs = list(refs)
        wanted = [parse_ref(ref) for ref in dict.fromkeys(refs) if ref not in self._resolved]
        if wanted:
            self._heal()
            if not self.offline:
                self._sync(wanted)
            elif not (self.repo / "HEAD").exists():
                raise UpstreamError(
                    f"the upstream cache has nothing of {self.source.location} yet and --offline fetches nothing: "
                    "run once without --offline"
                )
            local = self._local_refs()
            self._refuse_non_commits(wanted, local)
            commits = {w.ref: self._commit_of(w, local) for w in wanted}
            self._describe(commits, self._tags_by_commit(local))
        return {ref: self._resolved[ref] for ref in refs}

    def _describe(self, commits: Mapping[str, str], tags: Mapping[str, list[str]]) -> None:
        """Each commit's Dockerfile and Cargo.toml blob ids and its trailer, read from the commit and tree objects
        (two `git cat-file --batch` in all): a blobless cache has the trees, and never fetches a blob for this."""
        distinct = list(dict.fromkeys(commits.values()))
        commit_objects = _batch_contents(self._query("cat-file", "--batch", lines=distinct))
        tree_of = {c: data.split(b"\n", 1)[0].removeprefix(b"tree ").decode() for c, data in commit_objects.items()}
        trees = _batch_contents(self._query("cat-file", "--batch", lines=dict.fromkeys(tree_of.values())))
        for ref, commit in commits.items():
            files = _files_of_tree(trees.get(tree_of.get(commit, ""), b""), id_bytes=len(commit) // 2)
            dockerfile = files.get(DOCKERFILE)
            if dockerfile is None:
                raise UpstreamError(f"{ref} ({commit[:12]}) has no {DOCKERFILE} at the top of its tree")
            _, _, message = commit_objects.get(commit, b"").partition(b"\n\n")
            trailer = _TRAILER.search(message.decode(errors="replace"))
            self._resolved[ref] = ResolvedRef(
                ref=ref,
                commit=commit,
                upstream_commit=trailer.group(1) if trailer else commit,
                dockerfile_blob=dockerfile,
                cargo_toml_blob=files.get(CARGO_TOML),
                tags=tuple(sorted(tags.get(commit, ()))),
            )

    def resolve(self, ref: str) -> ResolvedRef:
        """Make `ref` available in the cache (fetching only what is missing) and describe it."""
        return self.resolve_all([ref])[ref]

    def tags_reachable_from(self, commit: str) -> list[str]:
        """Version-like tags (`v...`) on `commit` or in its fetched history (`git tag --merged`).

        A shallow fetch has no history behind the commit, so there only a tag on
        the commit itself is found.
        """
        return self._git("tag", "--list", "--merged", commit, "v[0-9]*").split()

    # -- blobs ----------------------------------------------------------------------------------

    def read_blobs(self, blobs: Iterable[str]) -> dict[str, bytes]:
        """The contents of these blobs: what the cache lacks is fetched in one request, each checked for size first."""
        blobs = list(blobs)
        wanted = [b for b in dict.fromkeys(blobs) if b not in self._blobs]
        if wanted:
            present = self._present(wanted)
            absent = [b for b in wanted if b not in present]
            if absent and not self.offline and self.source.kind != "bundle" and (self.repo / "HEAD").exists():
                self._fetch_blobs(absent)
                present = self._present(wanted)
            for blob in wanted:
                if blob not in present:
                    why = "--offline fetches nothing" if self.offline else f"upstream {self.source.location} lacks it"
                    raise UpstreamError(f"blob {blob} is not in the upstream cache and {why}")
                kind, size = present[blob]
                if kind != "blob":
                    raise UpstreamError(f"{blob} is a {kind} of upstream {self.source.location}, not a file")
                if size > MAX_INPUT_BYTES:
                    raise UpstreamError(
                        f"upstream blob {blob} is {size:,} bytes, far beyond any real {DOCKERFILE} or {CARGO_TOML} "
                        f"(the limit is {MAX_INPUT_BYTES:,}): is {self.source.location} the MAS repository?"
                    )
            contents = _batch_contents(self._query("cat-file", "--batch", lines=wanted))
            self._blobs.update({blob: contents[blob] for blob in wanted})
        return {blob: self._blobs[blob] for blob in blobs}

    def files_at(self, resolved: ResolvedRef, paths: Sequence[str]) -> dict[str, bytes | None]:
        """The contents of these files (paths from the top of the tree) at the resolved commit, None for one the
        commit does not have: what a series of patches changes besides the Dockerfile. One `git ls-tree` for the
        names, then the blobs as `read_blobs` reads them."""
        paths = list(dict.fromkeys(paths))
        if not paths:
            return {}
        proc = run_process(
            "git",
            f"--git-dir={self.repo}",
            "ls-tree",
            "-z",
            "--full-tree",
            resolved.commit,
            "--",
            *paths,
            check=False,
            env=_NO_LAZY_FETCH,
        )
        if proc.returncode != 0:
            raise UpstreamError(
                f"cannot list {', '.join(paths)} at {resolved.ref} ({resolved.commit[:12]}) in the upstream cache: "
                f"{proc.stderr.decode(errors='replace').strip()}"
            )
        blob_of: dict[str, str] = {}
        for entry in proc.stdout.split(b"\0"):
            if not entry:
                continue
            meta, _, name = entry.partition(b"\t")
            mode, kind, object_id = meta.decode().split(" ")
            path = name.decode(errors="replace")
            if kind != "blob" or not mode.startswith("100"):
                raise UpstreamError(
                    f"{path} is a {'symbolic link' if mode == '120000' else kind} at {resolved.ref}, not a regular "
                    "file: a patch changes regular files only"
                )
            blob_of[path] = object_id
        contents = self.read_blobs(blob_of.values())
        return {path: contents[blob_of[path]] if path in blob_of else None for path in paths}

    def _fetch_blobs(self, blobs: Sequence[str]) -> None:
        # What git's own lazy fetch asks a promisor remote, for all the blobs at once instead of one by one.
        args = [*_HOUSEKEEPING_UNDER_THE_LOCK, "-c", "fetch.negotiationAlgorithm=noop"]
        args += ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--recurse-submodules=no"]
        args += ["--filter=blob:none", "origin", *blobs]
        try:
            with self._locked():
                self._git(*args)
        except CommandFailed as exc:
            raise ToolFailed(f"cannot fetch {len(blobs)} blob(s) from upstream {self.source.location}: {exc}") from None

    def read_blob(self, blob: str) -> bytes:
        return self.read_blobs([blob])[blob]

    def local_blob(self, blob: str) -> str | None:
        """The full id of `blob` (an id or an unambiguous prefix) if the cache already holds it.

        Never fetches: a blobless cache would otherwise ask the remote for any id it is shown.
        """
        if not re.fullmatch(r"[0-9a-f]{4,40}", blob) or not (self.repo / "HEAD").exists():
            return None
        return self._query("rev-parse", "--verify", "--quiet", f"{blob}^{{blob}}").decode().strip() or None

    # -- worktrees ------------------------------------------------------------------------------

    def checkout(self, resolved: ResolvedRef, dest: Path, *, sparse: tuple[str, ...] | None = None) -> Path:
        """Check `resolved` out into `dest`, a worktree of the cache: patch there, never in the cache.

        `sparse` limits the files written (and, with a blobless cache, fetched).
        """
        if dest.exists() and any(dest.iterdir()):
            raise UpstreamError(f"checkout destination {dest} exists and is not empty")
        with self._locked():
            self._git("worktree", "prune")
            self._git("worktree", "add", "--quiet", "--detach", "--no-checkout", str(dest), resolved.commit)
        if sparse:
            git("sparse-checkout", "set", "--no-cone", *(f"/{p}" for p in sparse), cwd=dest)
        git("reset", "--quiet", "--hard", resolved.commit, cwd=dest)
        return dest

    def remove_checkout(self, dest: Path) -> None:
        with self._locked():
            self._git("worktree", "remove", "--force", str(dest))


def _short_id(wanted: WantedRef) -> str:
    """What to add to `unknown ref` when the name looks like an abbreviated commit id."""
    if re.fullmatch(r"[0-9a-f]{4,39}", wanted.base) is None:
        return ""
    return (
        ": if it is a commit id, name it in full (`git rev-parse` it); the upstream is asked for refs by name or "
        "by full id, and a short id is expanded only in a superproject, by the submodule's repository"
    )


def _pack_damage(packs: Path) -> str | None:
    """A pack or its index cut short (a run killed while it wrote them, a full disk): an index whose own checksum
    fails, or a pack whose closing checksum is not the one its index records. A pack git has not indexed yet is
    not used by git, so it is no damage."""
    if not packs.is_dir():
        return None if packs.parent.is_dir() else "its objects directory is missing"
    for index in sorted(packs.glob("pack-*.idx")):
        pack = index.with_suffix(".pack")
        size = (len(index.stem) - len("pack-")) // 2  # named after the pack's checksum: 20 bytes, or 32 (SHA-256)
        digest = hashlib.sha256 if size == hashlib.sha256().digest_size else hashlib.sha1
        try:
            data = index.read_bytes()
            with pack.open("rb") as handle:
                handle.seek(max(pack.stat().st_size - size, 0))
                trailer = handle.read(size)
        except FileNotFoundError:
            return f"pack {pack.name} is missing, its index is not"
        except OSError as exc:
            return f"{index.parent.name}/{index.name} cannot be read: {exc.strerror}"
        if not data.startswith(b"\377tOc"):
            continue  # an index of version 1, which no git of this century writes: git itself will say
        if len(data) < 8 + 256 * 4 + 2 * size or digest(data[:-size]).digest() != data[-size:]:
            return f"the index of pack {pack.name} is cut short"
        if trailer != data[-2 * size : -size]:
            return f"pack {pack.name} is cut short"
    return None


def _files_of_tree(tree: bytes, *, id_bytes: int) -> dict[str, str]:
    """Name -> blob id of the regular files at the top of a tree object (`<mode> <name>NUL<raw id>` entries)."""
    files = {}
    at = 0
    while at < len(tree):
        nul = tree.index(b"\0", at)
        mode, _, name = tree[at:nul].partition(b" ")
        object_id = tree[nul + 1 : nul + 1 + id_bytes].hex()
        at = nul + 1 + id_bytes
        if mode.startswith(b"100"):  # 100644 or 100755: not a directory, a link or a submodule
            files[name.decode(errors="replace")] = object_id
    return files


def _batch_contents(out: bytes) -> dict[str, bytes]:
    """Object id -> contents, from `git cat-file --batch` output (`<id> <type> <size>`, the contents, a newline;
    `<name> missing` for an object it does not have)."""
    contents = {}
    at = 0
    while at < len(out):
        end = out.index(b"\n", at)
        header = out[at:end].split()
        at = end + 1
        if len(header) != 3:
            continue  # `<name> missing`
        size = int(header[2])
        contents[header[0].decode()] = out[at : at + size]
        at += size + 1
    return contents


def open_cache(run: Run) -> UpstreamCache:
    """The cache of the run's upstream (outside a superproject), with its --cache-dir and --offline."""
    upstream = run.pins_upstream()
    local = Path(upstream).expanduser()
    if run.offline and "://" not in upstream and not local.exists():
        # Offline, a local upstream that is gone (a bundle on a disk not mounted now) is still found in the
        # cache under its name; its kind matters only to fetching, which offline never does.
        source = UpstreamSource(location=str(local.resolve()), kind="path")
    else:
        source = UpstreamSource.parse(upstream)
    return UpstreamCache(run.cache_dir, source, offline=run.offline)
