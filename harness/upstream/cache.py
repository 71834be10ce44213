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

import logging
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config.run import Run
from harness.errors import CommandFailed, UpstreamError
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
MAX_BLOB_BYTES = MAX_INPUT_BYTES
"""Upstream blobs the harness reads are a Dockerfile and a Cargo.toml, a few KiB each; far more is not MAS."""

_TAGS, _BRANCHES = "refs/tags/", "refs/remotes/origin/"
# Never ask a promisor remote for an object behind the caller's back: a miss is answered here, in one fetch.
_NO_LAZY_FETCH = {"GIT_NO_LAZY_FETCH": "1"}


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

    # -- repository -----------------------------------------------------------------------------

    @cached_property
    def _lock(self) -> FileLock:
        # Imported here: only a fetch or a checkout takes it, and commands such as `status` never do.
        from filelock import FileLock  # noqa: PLC0415

        return FileLock(str(self.root / "repos" / f"{self.source.cache_key}.lock"))

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
                raise UpstreamError(f"unknown ref {w.base!r}: no such tag or branch in upstream {self.source.location}")
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
            self._git(*args)
        except CommandFailed as exc:
            shown = " ".join(s.rsplit(":", 1)[-1].removeprefix(_TAGS).removeprefix(_BRANCHES) for s in specs)
            raise UpstreamError(f"cannot fetch {shown} from upstream {self.source.location}: {exc}") from None

    def _sync(self, wanted: Sequence[WantedRef]) -> None:
        """Make the cache hold what the remote says each ref is now, fetching what it lacks in one go."""
        listing = self.remote_refs()
        if not self._missing(wanted, listing):
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._ensure_repo()
            missing = self._missing(wanted, listing)  # another run may have fetched them meanwhile
            if missing:
                self._fetch(missing)

    def _commit_of(self, wanted: WantedRef, local: Mapping[str, _LocalRef]) -> str:
        if wanted.by_id:
            start = wanted.base
        else:
            where = self._where(wanted, {n.replace(_BRANCHES, "refs/heads/", 1): r.oid for n, r in local.items()})
            if where is None:
                if self.offline:
                    raise UpstreamError(
                        f"{wanted.base!r} is not in the upstream cache and --offline fetches nothing: "
                        "run once without --offline"
                    )
                raise UpstreamError(f"unknown ref {wanted.base!r} in upstream {self.source.location}")
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
            if not self.offline:
                self._sync(wanted)
            elif not (self.repo / "HEAD").exists():
                raise UpstreamError(
                    f"the upstream cache has nothing of {self.source.location} yet and --offline fetches nothing: "
                    "run once without --offline"
                )
            local = self._local_refs()
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
                if size > MAX_BLOB_BYTES:
                    raise UpstreamError(
                        f"upstream blob {blob} is {size:,} bytes, far beyond any real {DOCKERFILE} or {CARGO_TOML} "
                        f"(the limit is {MAX_BLOB_BYTES:,}): is {self.source.location} the MAS repository?"
                    )
            contents = _batch_contents(self._query("cat-file", "--batch", lines=wanted))
            self._blobs.update({blob: contents[blob] for blob in wanted})
        return {blob: self._blobs[blob] for blob in blobs}

    def _fetch_blobs(self, blobs: Sequence[str]) -> None:
        # What git's own lazy fetch asks a promisor remote, for all the blobs at once instead of one by one.
        args = ["-c", "fetch.negotiationAlgorithm=noop", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head"]
        args += ["--recurse-submodules=no", "--filter=blob:none", "origin", *blobs]
        try:
            with self._lock:
                self._git(*args)
        except CommandFailed as exc:
            raise UpstreamError(
                f"cannot fetch {len(blobs)} blob(s) from upstream {self.source.location}: {exc}"
            ) from None

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
