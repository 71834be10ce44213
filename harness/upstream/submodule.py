"""A superproject's MAS submodule as git records it, read and never written.

What the superproject records is the gitlink of the submodule in its index (what
`git submodule update` checks out and the next commit records). Refs of the
submodule's upstream are read through the harness's checkout cache, with the
submodule's own repository (no network) or its remote as the source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.config.run import Run
from harness.config.superproject import SuperprojectConfig
from harness.errors import BadInput, CheckFailed, UpstreamError
from harness.proc import git
from harness.proc import run as run_process
from harness.upstream.cache import UpstreamCache, open_cache
from harness.upstream.releases import LATEST, latest_tag, newest_tag, no_release_message, pick_latest, require_online
from harness.upstream.source import UpstreamSource, parse_ref

_GITLINK_MODE = "160000"


@dataclass(frozen=True, kw_only=True)
class Submodule:
    path: str
    """Relative to the superproject directory, as in its configuration."""
    work_tree: Path
    recorded_commit: str
    """The gitlink in the superproject's index."""
    committed_commit: str | None
    """The gitlink in the superproject's HEAD; None before the first commit that has the submodule."""
    checked_out: str | None
    """The submodule work tree's HEAD; None when it is not initialised."""
    git_dir: Path | None
    remote_url: str | None

    @property
    def bump_staged(self) -> bool:
        return self.committed_commit is not None and self.committed_commit != self.recorded_commit

    @property
    def at_recorded_commit(self) -> bool:
        return self.checked_out == self.recorded_commit


def _git_ok(*args: str, cwd: Path) -> str | None:
    """Stdout of a git query, or None when git says no (an absent ref, not a repository)."""
    proc = run_process("git", *args, cwd=cwd, check=False)
    return os.fsdecode(proc.stdout).strip() if proc.returncode == 0 else None


def _gitlink(listing: str, path: str) -> str | None:
    """The commit of `path` in `git ls-files --stage` or `git ls-tree` output, when it is a gitlink."""
    for line in listing.splitlines():
        meta, _, name = line.partition("\t")
        fields = meta.split()
        if name == path and fields and fields[0] == _GITLINK_MODE:
            # ls-files --stage: mode sha stage; ls-tree: mode type sha.
            return fields[1] if len(fields[1]) >= 40 else fields[2]
    return None


def _remote_url_from_gitmodules(root: Path, path: str) -> str | None:
    """The URL `git submodule` would clone from, for a submodule that is not initialised."""
    top = _git_ok("rev-parse", "--show-toplevel", cwd=root)
    prefix = _git_ok("rev-parse", "--show-prefix", cwd=root) or ""
    if top is None:
        return None
    from_top = f"{prefix}{path}"
    listing = _git_ok("config", "-f", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$", cwd=Path(top)) or ""
    for line in listing.splitlines():
        key, _, value = line.partition(" ")
        if value == from_top:
            name = key.removeprefix("submodule.").removesuffix(".path")
            # `git submodule init` writes the absolute URL to .git/config; .gitmodules may hold a relative one.
            url = _git_ok("config", "--get", f"submodule.{name}.url", cwd=Path(top)) or _git_ok(
                "config", "-f", ".gitmodules", "--get", f"submodule.{name}.url", cwd=Path(top)
            )
            if url and not url.startswith(("./", "../")):
                return url
    return None


def _refuse_links(root: Path, path: str) -> None:
    """A submodule is a directory inside the superproject: a symbolic link on its path would take every read and
    every write of `apply` to wherever it points."""
    current = root
    for part in PurePosixPath(path).parts:
        current = current / part
        if current.is_symlink():
            shown = current.relative_to(root).as_posix()
            raise BadInput(
                f"submodule {path}: {shown} is a symbolic link (-> {current.readlink()}), not a directory of the "
                f"superproject {root}: refusing to follow it"
            )


def inspect_submodule(config: SuperprojectConfig) -> Submodule:
    """Read (never write) what the superproject records for its submodule and what is checked out."""
    root, path = config.root, config.submodule
    _refuse_links(root, path)
    if _git_ok("rev-parse", "--show-toplevel", cwd=root) is None:
        raise BadInput(f"superproject {root} is not inside a git work tree")
    staged = git("ls-files", "--stage", "--", path, cwd=root)
    recorded = _gitlink(staged, path)
    if recorded is None:
        what = "is tracked as ordinary files" if staged else "is not in its index"
        raise BadInput(f"{path} is not a submodule of {root}: it {what} (add it with `git submodule add URL {path}`)")
    committed = _gitlink(_git_ok("ls-tree", "HEAD", "--", path, cwd=root) or "", path)
    work_tree = config.work_tree
    checked_out = git_dir = None
    remote_url: str | None = None
    # An uninitialised submodule is an empty directory: git there would answer for the superproject.
    top = _git_ok("rev-parse", "--show-toplevel", cwd=work_tree) if work_tree.is_dir() else None
    if top is not None and Path(top).resolve() == work_tree.resolve():
        checked_out = _git_ok("rev-parse", "--verify", "--quiet", "HEAD", cwd=work_tree)
        git_dir_text = _git_ok("rev-parse", "--absolute-git-dir", cwd=work_tree)
        git_dir = Path(git_dir_text) if git_dir_text else None
        remote_url = _git_ok("remote", "get-url", "origin", cwd=work_tree)
    if remote_url is None:
        remote_url = _remote_url_from_gitmodules(root, path)
    return Submodule(
        path=path,
        work_tree=work_tree,
        recorded_commit=recorded,
        committed_commit=committed,
        checked_out=checked_out,
        git_dir=git_dir,
        remote_url=remote_url,
    )


def _local_commit(git_dir: Path, ref: str) -> str | None:
    return _git_ok(f"--git-dir={git_dir}", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=git_dir)


@dataclass(frozen=True, kw_only=True)
class SubmoduleUpstream:
    cache: UpstreamCache
    ref: str
    """The ref as the cache should resolve it."""
    latest: str | None = None
    """The tag `latest` stood for, when it was asked for."""
    latest_from: str = ""
    """Whose tags `latest` was the newest of, in words."""


def _local_tags(git_dir: Path) -> list[str]:
    return (_git_ok(f"--git-dir={git_dir}", "tag", "--list", cwd=git_dir) or "").split()


def _open_latest(run: Run, sub: Submodule, *, pre: bool) -> SubmoduleUpstream:
    """`latest` in a superproject: the newest release tag the submodule's own repository holds or its remote has.

    The remote is asked too (its one `ls-remote`): a clone fetched months ago does not hold the releases made
    since, and "the newest release" means upstream's. The tag is then read where open_upstream reads any tag:
    the submodule's repository when it holds it (no fetch), else the remote, whose listing is reused.
    """
    config, cache_dir, offline = run.in_superproject(), run.cache_dir, run.offline
    if config.upstream is not None:
        cache = UpstreamCache(cache_dir, UpstreamSource.parse(config.upstream), offline=offline)
        tag = latest_tag(cache, pre=pre)
        return SubmoduleUpstream(cache=cache, ref=tag, latest=tag, latest_from=cache.source.location)
    require_online(offline=offline)
    local = _local_tags(sub.git_dir) if sub.git_dir is not None else []
    remote = None
    if sub.remote_url is not None:
        remote = UpstreamCache(cache_dir, UpstreamSource.parse(sub.remote_url), offline=offline)
    tags = [*local, *(remote.remote_tags() if remote else ())]
    newest = newest_tag(tags, pre=pre)
    if newest is None:
        raise UpstreamError(no_release_message(sub.remote_url or str(sub.git_dir or sub.path), tags, pre=pre))
    tag = newest
    whose = f"{sub.path}'s repository" + (f" and its remote {sub.remote_url}" if remote is not None else "")
    if tag in local and sub.git_dir is not None:
        cache = UpstreamCache(cache_dir, UpstreamSource.parse(str(sub.git_dir)), offline=offline)
        return SubmoduleUpstream(cache=cache, ref=tag, latest=tag, latest_from=whose)
    if remote is None:  # unreachable: a tag not held locally came from the remote
        raise UpstreamError(f"{sub.path} does not have {tag} and has no remote to fetch it from")
    return SubmoduleUpstream(cache=remote, ref=tag, latest=tag, latest_from=whose)


def open_upstream(run: Run, sub: Submodule, ref: str, *, pre: bool = False) -> SubmoduleUpstream:
    """The cache for `ref` in the run's superproject: the configured upstream, else the submodule's repository
    when it has the ref (no network), else the submodule's remote. Offline, the cache answers alone.
    `latest` is the newest release tag (pre-releases too with `pre`), see _open_latest.

    The ref is read as everywhere (harness.upstream.source.parse_ref): a reflog, range or path
    expression means nothing to an upstream, whatever the submodule's own repository would make of
    it. Only here is a short commit id accepted: the submodule's repository expands it.
    """
    parse_ref(ref)
    if ref == LATEST:
        return _open_latest(run, sub, pre=pre)
    config, cache_dir, offline = run.in_superproject(), run.cache_dir, run.offline
    if config.upstream is not None:
        source = UpstreamSource.parse(config.upstream)
        return SubmoduleUpstream(cache=UpstreamCache(cache_dir, source, offline=offline), ref=ref)
    if sub.git_dir is not None:
        commit = _local_commit(sub.git_dir, ref)
        if commit is not None:
            source = UpstreamSource.parse(str(sub.git_dir))
            # The cache fetches tags and branches by name; anything else the submodule's repository
            # knows (a short id, origin/main) is fetched by its full commit id.
            by_name = any(
                _git_ok(f"--git-dir={sub.git_dir}", "show-ref", "--verify", "--quiet", full, cwd=sub.git_dir)
                is not None
                for full in (f"refs/tags/{ref}", f"refs/heads/{ref}")
            )
            cache = UpstreamCache(cache_dir, source, offline=offline)
            return SubmoduleUpstream(cache=cache, ref=ref if by_name else commit)
    if sub.remote_url is not None:
        source = UpstreamSource.parse(sub.remote_url)
        return SubmoduleUpstream(cache=UpstreamCache(cache_dir, source, offline=offline), ref=ref)
    raise UpstreamError(
        f"{sub.path} does not have {ref} and has no remote to fetch it from: "
        f"run `git submodule update --init {sub.path}` or set `upstream` in [tool.mas-harness]"
    )


def open_ref(run: Run, ref: str, *, pre: bool = False) -> SubmoduleUpstream:
    """The cache for `ref` in this run: in a superproject, as `open_upstream` chooses; else the run's upstream,
    where `latest` is the newest release tag of that upstream."""
    if run.superproject is not None:
        return open_upstream(run, inspect_submodule(run.superproject), ref, pre=pre)
    cache = open_cache(run)
    resolved, latest = pick_latest(cache, ref, pre=pre)
    return SubmoduleUpstream(cache=cache, ref=resolved, latest=latest, latest_from=cache.source.location)


def exact_tag(sub: Submodule, commit: str) -> str | None:
    if sub.git_dir is None:
        return None
    return _git_ok(f"--git-dir={sub.git_dir}", "describe", "--tags", "--exact-match", commit, cwd=sub.git_dir)


def work_tree_for(config: SuperprojectConfig, *, require_recorded: bool) -> tuple[Path, Submodule]:
    """The submodule's work tree, for status, apply and revert to work on in place.

    With `require_recorded`, a checkout at another commit than the one recorded is
    refused: that is not the upstream `verify` vouched for.
    """
    sub = inspect_submodule(config)
    if sub.checked_out is None:
        raise BadInput(f"submodule {sub.path} is not checked out: run `git submodule update --init {sub.path}`")
    if require_recorded and not sub.at_recorded_commit:
        raise CheckFailed(
            f"submodule {sub.path} is checked out at {sub.checked_out[:12]}, the superproject records "
            f"{sub.recorded_commit[:12]}: run `git submodule update {sub.path}` or stage the bump with "
            f"`git add {sub.path}` (or use --checkout {sub.path} to patch whatever is checked out)"
        )
    return sub.work_tree, sub
