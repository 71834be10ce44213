"""Applying a patch to a checkout: state, idempotent and atomic apply, revert, with per-hunk detail.

`git apply` is the authority on whether a patch applies (zero fuzz, as users run
it); unidiff reads the hunks so that a conflict can be explained hunk by hunk.
Every git apply runs in a private staging directory holding copies of the files
the patch touches, so files the patch does not name are never opened for writing.

The checkout's files are read and written only inside it (harness.files: no symbolic
link is followed, only regular files are touched), and an apply or a revert is
all-or-nothing even across a crash (harness.patch.journal).

A series of patches applies in order, each to the tree the ones before it leave; those
trees are computed in memory, never written. Applying or reverting a series is one change
under one journal: every patch goes, or none does. One patch is a series of one, and is
judged, reported and written exactly as it always was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.errors import BadInput, CheckFailed, CommandFailed, PatchError
from harness.files import MAX_INPUT_BYTES, locked_tree, read_in_tree, remove_stray_temps, size_text, write_in_tree
from harness.patch.hunks import HunkReport, hunk_reports
from harness.patch.journal import Journal, JournalEntry, JournalFile, roll_forward
from harness.patch.patchfile import Patch
from harness.proc import run

log = logging.getLogger("harness")


class State(enum.StrEnum):
    APPLIES = "applies"
    """Pristine: the forward check passes."""
    APPLIED = "applied"
    """Our earlier apply: the reverse check passes, the committed file does not have the change."""
    UPSTREAMED = "upstreamed"
    """The committed upstream file already has the change: drop the patch."""
    CONFLICT = "conflict"
    """Neither forward nor reverse applies."""
    PARTLY_APPLIED = "partly-applied"
    """A series only: its first patches are applied and the others apply to what those leave."""
    NOT_CHECKED = "not-checked"
    """A patch of a series after one that does not apply: the tree it would apply to does not exist."""


@dataclass(frozen=True, kw_only=True)
class PatchReport:
    state: State
    hunks: tuple[HunkReport, ...]
    reason: str


@dataclass(frozen=True, kw_only=True)
class ApplyResult:
    action: Literal["applied", "reverted", "no-op"]
    report: PatchReport
    message: str


class PatchConflict(CheckFailed):
    def __init__(self, message: str, report: PatchReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True, kw_only=True)
class SeriesReport:
    """The state of a checkout with respect to a series, and of each patch in it (one report per patch, in order)."""

    state: State
    reason: str
    patches: tuple[Patch, ...]
    reports: tuple[PatchReport, ...]


@dataclass(frozen=True, kw_only=True)
class SeriesResult:
    action: Literal["applied", "reverted", "no-op"]
    report: SeriesReport
    message: str


class SeriesConflict(CheckFailed):
    def __init__(self, message: str, report: SeriesReport) -> None:
        super().__init__(message)
        self.report = report


def series_files(patches: Sequence[Patch]) -> tuple[str, ...]:
    """Every file any patch of the series names, each once, in the order they are first named."""
    return tuple(dict.fromkeys(name for patch in patches for name in patch.files))


def dockerfile_patch_index(patches: Sequence[Patch], dockerfile: str) -> int:
    """Which patch of a series changes `dockerfile`: the one the harness checks, rebases and has variants for.
    One patch is that patch; a series must have exactly one such patch (the others are the user's own, checked
    where they apply and never replaced)."""
    if len(patches) == 1:
        return 0
    touching = [index for index, patch in enumerate(patches) if dockerfile in patch.files]
    if len(touching) == 1:
        return touching[0]
    if not touching:
        raise BadInput(
            f"no patch of {named(patches)} changes upstream's {dockerfile}: the harness checks a series through "
            f"the one patch that does"
        )
    names = ", ".join(patches[index].path.name for index in touching)
    raise BadInput(
        f"{len(touching)} patches of the series change upstream's {dockerfile} ({names}): the harness checks, "
        f"rebases and offers variants for one; make their {dockerfile} changes one patch"
    )


def label(patches: Sequence[Patch], index: int) -> str:
    """A patch as a series' messages name it: `b.patch (2 of 3)`; one patch by its file name alone."""
    name = patches[index].path.name
    return name if len(patches) == 1 else f"{name} ({index + 1} of {len(patches)})"


def named(patches: Sequence[Patch]) -> str:
    """The patches as a sentence names them: `a.patch`, or `the series a.patch, b.patch`."""
    names = ", ".join(patch.path.name for patch in patches)
    return names if len(patches) == 1 else f"the series {names}"


def read_files(tree: Path, patch: Patch) -> dict[str, bytes | None]:
    """The files the patch names, read inside `tree` only (None: absent); a link or a special file is refused."""
    return _read(tree, patch.files)


def read_series_files(tree: Path, patches: Sequence[Patch]) -> dict[str, bytes | None]:
    """`read_files` for every file any patch of the series names."""
    return _read(tree, series_files(patches))


def _read(tree: Path, names: Sequence[str]) -> dict[str, bytes | None]:
    return {name: read_in_tree(tree, name, limit=MAX_INPUT_BYTES) for name in names}


def _require_plausible_sizes(contents: Mapping[str, bytes | None]) -> None:
    for name, data in contents.items():
        if data is not None and len(data) > MAX_INPUT_BYTES:
            raise PatchError(
                f"{name} is {size_text(len(data))}, more than the {size_text(MAX_INPUT_BYTES)} a Dockerfile "
                "plausibly has: refusing to patch it"
            )


@contextlib.contextmanager
def _staging(contents: Mapping[str, bytes | None]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mas-harness-apply-") as tmp:
        root = Path(tmp)
        for name, data in contents.items():
            if data is not None:
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
        yield root


def _git_apply(root: Path, patch: Patch, *flags: str) -> tuple[bool, str]:
    # The ceiling keeps git from discovering a repository above the staging directory.
    proc = run(
        "git",
        "apply",
        *flags,
        "-",
        cwd=root,
        check=False,
        input_bytes=patch.data,
        env={"GIT_CEILING_DIRECTORIES": str(root.parent)},
    )
    return proc.returncode == 0, proc.stderr.decode(errors="replace").strip()


def _check(contents: Mapping[str, bytes | None], patch: Patch, *, reverse: bool = False) -> bool:
    """Whether `git apply --check` (or `--check --reverse`) accepts the patch on these contents."""
    return _checked(contents, patch, reverse=reverse)[0]


def _checked(contents: Mapping[str, bytes | None], patch: Patch, *, reverse: bool = False) -> tuple[bool, str]:
    """`_check`, and what git said when it refused."""
    with _staging(contents) as root:
        return _git_apply(root, patch, "--check", *(("--reverse",) if reverse else ()))


_FAILED_AT = re.compile(r"^error: patch failed: (?P<file>.+):(?P<line>\d+)$", re.MULTILINE)


def _refused_by_git(hunks: tuple[HunkReport, ...], error: str) -> tuple[HunkReport, ...]:
    """The hunks git refused although their lines are there (no context to anchor them, say), marked with git's
    reason: a conflict must never be shown beside hunks that all "apply"."""
    lines = [line.removeprefix("error: ") for line in error.splitlines() if line.startswith("error: ")]
    reason = "; ".join(dict.fromkeys(lines)) or error or "no reason given"
    named = {(found["file"], int(found["line"])) for found in _FAILED_AT.finditer(error)}
    matching = [h for h in hunks if h.status in ("exact", "offset")]
    # A hunk already applied explains itself (a half-applied patch); one that "applies" and git refuses does not.
    refused = [h for h in matching if (h.file, h.expected_start) in named]
    if not named and len(matching) == len(hunks):
        refused = matching
    return tuple(dataclasses.replace(h, status="conflict", refused=reason) if h in refused else h for h in hunks)


def evaluate(
    contents: Mapping[str, bytes | None],
    patch: Patch,
    *,
    committed: Mapping[str, bytes | None] | None = None,
) -> PatchReport:
    """The state of `contents` with respect to `patch`.

    `committed` is the same files as the commit they were checked out from has
    them. When the reverse check passes, it tells our own earlier apply (the
    commit lacks the change) from upstream having taken it (the commit has it).
    For a ref read straight from upstream, pass the contents themselves; None
    means there is no commit to compare with, and the change is taken as ours.
    """
    _require_plausible_sizes(contents)
    hunks = tuple(hunk_reports(patch, contents))
    # The reverse check only tells the other states apart: a patch that applies needs no more.
    forward, refusal = _checked(contents, patch)
    if forward:
        return PatchReport(state=State.APPLIES, hunks=hunks, reason="the forward check passes")
    if _check(contents, patch, reverse=True):
        if committed is None:
            return PatchReport(
                state=State.APPLIED,
                hunks=hunks,
                reason="the reverse check passes (no commit to compare with: taken as our apply)",
            )
        if committed == contents or _check(committed, patch, reverse=True):
            return PatchReport(
                state=State.UPSTREAMED,
                hunks=hunks,
                reason="the committed upstream file already has the change: drop the patch",
            )
        return PatchReport(
            state=State.APPLIED, hunks=hunks, reason="the reverse check passes and the commit does not have the change"
        )
    if not any(h.status == "conflict" for h in hunks):
        hunks = _refused_by_git(hunks, refusal)
    conflicts = [h.describe() for h in hunks if h.status == "conflict"]
    reason = "; ".join(conflicts) if conflicts else "git apply rejects the patch in both directions"
    return PatchReport(state=State.CONFLICT, hunks=hunks, reason=reason)


Contents = Mapping[str, bytes | None]


def _only(contents: Contents, patch: Patch) -> dict[str, bytes | None]:
    """The files this patch names: what it is judged on, as if it were the only patch."""
    return {name: contents[name] for name in patch.files}


def _through(contents: Contents, patch: Patch, *, reverse: bool) -> dict[str, bytes | None] | None:
    """Every file as applying (or reversing) the patch leaves it, off the tree; None when git apply refuses."""
    with _staging(_only(contents, patch)) as root:
        ok, _ = _git_apply(root, patch, *(("--reverse",) if reverse else ()))
        if not ok:
            return None
        return {**contents, **{name: (root / name).read_bytes() for name in patch.files}}


def _walk(contents: Contents, patches: Sequence[Patch], *, reverse: bool) -> list[dict[str, bytes | None]]:
    """The trees applying (or reversing) the patches one after another leaves, `contents` first, up to the first
    patch git apply refuses: one tree more than the patches it got through."""
    trees = [dict(contents)]
    for patch in patches:
        after = _through(trees[-1], patch, reverse=reverse)
        if after is None:
            break
        trees.append(after)
    return trees


def _not_checked(patches: Sequence[Patch], stop: int) -> PatchReport:
    return PatchReport(
        state=State.NOT_CHECKED,
        hunks=(),
        reason=f"not checked: {label(patches, stop)} before it does not apply, so the tree it applies to is unknown",
    )


def evaluate_series(contents: Contents, patches: Sequence[Patch], *, committed: Contents | None = None) -> SeriesReport:
    """The state of `contents` with respect to a series that applies in order, and of each patch in it.

    `contents` and `committed` hold every file of the series (`committed` as in `evaluate`). Each patch is judged
    by `evaluate` on the tree the ones before it leave, computed here, off the tree. The series is applied up to
    patch k when reversing patches k..1 (the last first) gets through and the rest then apply in order; the
    smallest such k is taken, as `evaluate` tries the forward check first. When there is none, the patches are
    walked from the longest applied start on, and the first one that does not apply says why; those after it are
    not checked, since the tree they would apply to does not exist.
    """
    _require_plausible_sizes(contents)
    if len(patches) == 1:
        # One patch: its report is the series' (the walk below comes to the same answer with more runs of git).
        report = evaluate(contents, patches[0], committed=committed)
        return SeriesReport(state=report.state, reason=report.reason, patches=tuple(patches), reports=(report,))
    count = len(patches)
    backs: dict[int, list[dict[str, bytes | None]]] = {}
    for applied in range(count + 1):
        backs[applied] = _walk(contents, patches[:applied][::-1], reverse=True)
        if len(backs[applied]) <= applied:
            continue
        ahead = _walk(contents, patches[applied:], reverse=False)
        if len(ahead) <= count - applied:
            continue
        trees = [*backs[applied][::-1], *ahead[1:]]
        reports = [
            _judged(trees[i + 1] if i < applied else trees[i], patch, committed) for i, patch in enumerate(patches)
        ]
        return _settled(patches, reports, applied)
    applied = max(k for k, back in backs.items() if len(back) == k + 1)
    ahead = _walk(contents, patches[applied:], reverse=False)
    trees = [*backs[applied][::-1], *ahead[1:]]
    stop = applied + len(ahead) - 1
    reports = [
        _judged(trees[i + 1] if i < applied else trees[i], patch, committed)
        for i, patch in enumerate(patches[: stop + 1])
    ]
    reports += [_not_checked(patches, stop) for _ in patches[stop + 1 :]]
    return _stopped(patches, reports, applied=applied, stop=stop)


def _judged(tree: Contents, patch: Patch, committed: Contents | None) -> PatchReport:
    return evaluate(_only(tree, patch), patch, committed=None if committed is None else _only(committed, patch))


def _upstreamed(patches: Sequence[Patch], reports: Sequence[PatchReport]) -> str:
    return "; ".join(
        f"{label(patches, i)}: {report.reason}" for i, report in enumerate(reports) if report.state is State.UPSTREAMED
    )


def _settled(patches: Sequence[Patch], reports: Sequence[PatchReport], applied: int) -> SeriesReport:
    """A series every patch of which fits: the first `applied` applied, the others applying after them."""
    count = len(patches)
    if any(report.state is State.UPSTREAMED for report in reports):
        # As for one patch: upstream has the change, so the patch is dropped, not applied again or reverted.
        state, reason = State.UPSTREAMED, _upstreamed(patches, reports)
    elif applied == 0:
        state, reason = State.APPLIES, "the forward check of each patch passes on the tree the ones before it leave"
    elif applied == count:
        state, reason = State.APPLIED, "the reverse check of each patch passes, the last first"
    else:
        done = ", ".join(label(patches, i) for i in range(applied))
        rest = ", ".join(label(patches, i) for i in range(applied, count))
        state = State.PARTLY_APPLIED
        reason = (
            f"{done} applied, {rest} not (and would apply): apply the rest one at a time with --patch FILE, "
            "or revert the applied ones, the last first"
        )
    return SeriesReport(state=state, reason=reason, patches=tuple(patches), reports=tuple(reports))


def _stopped(patches: Sequence[Patch], reports: Sequence[PatchReport], *, applied: int, stop: int) -> SeriesReport:
    """A series that does not fit: patch `stop` does not apply to what the ones before it leave."""
    report = reports[stop]
    where = label(patches, stop)
    if report.state is State.UPSTREAMED:
        state, reason = State.UPSTREAMED, f"{where}: {report.reason}"
    elif report.state is State.APPLIED:
        # Its change is there, but the patches before it are not (applied out of order, or alone).
        state = State.CONFLICT
        before = f"{label(patches, applied)} before it is not" if stop > applied else "those before it do not reverse"
        reason = f"{where} is applied, but {before}: a series applies in order"
    else:
        state, reason = State.CONFLICT, f"{where}: {report.reason}"
    return SeriesReport(state=state, reason=reason, patches=tuple(patches), reports=tuple(reports))


def committed_files(tree: Path, names: Sequence[str]) -> dict[str, bytes | None] | None:
    """These files as HEAD has them, or None when `tree` is not a git work tree's top."""
    probe = run("git", "rev-parse", "--show-toplevel", cwd=tree, check=False)
    if probe.returncode != 0 or Path(os.fsdecode(probe.stdout).strip()).resolve() != tree.resolve():
        return None
    contents: dict[str, bytes | None] = {}
    for name in names:
        shown = run("git", "show", f"HEAD:{name}", cwd=tree, check=False)
        contents[name] = shown.stdout if shown.returncode == 0 else None
    return contents


def status(tree: Path, patch: Patch, *, journals: Path | None = None) -> PatchReport:
    """The state of the checkout; it writes nothing, so an interrupted apply or revert is reported, not finished.

    `journals`: where the journal of a checkout that is not a git work tree is (harness.patch.journal).
    """
    return series_status(tree, (patch,), journals=journals).reports[0]


def series_status(tree: Path, patches: Sequence[Patch], *, journals: Path | None = None) -> SeriesReport:
    """`status` of a series: the state of the checkout, and of each patch on the tree the ones before it leave."""
    journal_file = JournalFile.of(tree, journals=journals)
    pending = journal_file.read() if journal_file is not None else None
    if journal_file is not None and pending is not None:
        raise BadInput(
            f"the {pending.action} of {pending.patch} in {tree} was interrupted ({journal_file.path} records it): "
            "run `mas-harness apply` or `mas-harness revert` on this checkout to finish it first"
        )
    files = series_files(patches)
    return evaluate_series(_read(tree, files), patches, committed=committed_files(tree, files))


def patched_contents(patch: Patch, contents: Mapping[str, bytes | None], *, reverse: bool = False) -> dict[str, bytes]:
    """The files as applying (or reversing) the patch leaves them, computed off the tree."""
    flags = ("--reverse",) if reverse else ()
    with _staging(contents) as root:
        ok, error = _git_apply(root, patch, *flags)
        if not ok:
            raise CommandFailed(["git", "apply", *flags], 1, error)
        return {name: (root / name).read_bytes() for name in patch.files}


def _finish_interrupted(tree: Path, files: Sequence[str], journal_file: JournalFile) -> None:
    """What a crashed run left: finish its apply or revert, and delete its temporary files."""
    finished = roll_forward(tree, journal_file, files=files, limit=MAX_INPUT_BYTES)
    if finished is not None:
        log.warning(
            "finished the %s of %s in %s that was interrupted (%d files)",
            finished.action,
            finished.patch,
            tree,
            len(finished.entries),
        )
    stray = journal_file.remove_stray_temps()
    names = dict.fromkeys([*files, *(entry.name for entry in (finished.entries if finished else ()))])
    for name in names:
        stray += [str(tree / temp) for temp in remove_stray_temps(tree, name)]
    if stray:
        log.warning("removed temporary files an interrupted run left: %s", ", ".join(stray))


def _replace_all(tree: Path, journal_file: JournalFile, journal: Journal) -> None:
    """Write every file or none, even across a crash: the journal first, then each file by one rename.

    A failure here rolls the written files back and removes the journal; a crash leaves
    the journal, and the next apply or revert finishes the job from it.
    """
    try:
        journal_file.write(journal)
    except OSError as exc:
        raise BadInput(
            f"cannot record the change in {journal_file.path}: {exc.strerror}; nothing was changed"
        ) from None
    done: list[JournalEntry] = []
    current = ""
    try:
        for entry in journal.entries:
            current = entry.name
            write_in_tree(tree, entry.name, entry.after)
            done.append(entry)
    except BaseException as failure:
        _roll_back(tree, journal_file, done, failure)
        if isinstance(failure, OSError):
            raise BadInput(f"cannot write {tree / current}: {failure.strerror}; nothing was changed") from None
        raise
    journal_file.remove()


def _roll_back(tree: Path, journal_file: JournalFile, done: Sequence[JournalEntry], failure: BaseException) -> None:
    try:
        for entry in reversed(done):
            write_in_tree(tree, entry.name, entry.before)
    except (OSError, BadInput) as exc:
        # The journal stays: the next apply or revert rolls the whole change forward from it.
        raise BadInput(
            f"writing {tree} failed ({failure}) and undoing it failed too ({exc}); the next `mas-harness apply` "
            f"or `revert` on this checkout finishes the change from {journal_file.path}"
        ) from None
    journal_file.remove()


def _journal(action: str, patches: Sequence[Patch], before: Contents, after: Contents) -> Journal:
    entries = []
    for name, data in after.items():
        original = before[name]
        if original is None or data is None:
            raise PatchError(f"{named(patches)} would create {name}; only modifications are supported")
        if original != data:
            entries.append(JournalEntry(name=name, before=original, after=data))
    return Journal(action=action, patches=tuple(patch.path.name for patch in patches), entries=tuple(entries))


@dataclass(frozen=True, kw_only=True)
class _Direction:
    """What apply and revert each start from, end at, and call it."""

    action: Literal["apply", "revert"]
    ready: State
    """The state the change can start from."""
    done: State
    """The state the change leads to: finding it there already is a no-op."""
    done_message: str
    did: Literal["applied", "reverted"]
    where: str


_APPLY = _Direction(
    action="apply",
    ready=State.APPLIES,
    done=State.APPLIED,
    done_message="is already applied",
    did="applied",
    where="to",
)
_REVERT = _Direction(
    action="revert", ready=State.APPLIED, done=State.APPLIES, done_message="is not applied", did="reverted", where="in"
)


def _all_the_way(contents: Contents, patches: Sequence[Patch], *, reverse: bool) -> dict[str, bytes | None]:
    """The files as applying (or reversing) every patch in the order given leaves them; each must go through."""
    current = dict(contents)
    for patch in patches:
        current.update(patched_contents(patch, _only(current, patch), reverse=reverse))
    return current


def _irreversible(tree: Path, patches: Sequence[Patch], original: Contents, updated: Contents) -> str | None:
    """Why the applied series would not reverse-check (None: it does), as the users' snippet checks before it
    applies: reversing each patch, the last first, must go through and give back the files as they were."""
    back = _walk(updated, patches[::-1], reverse=True)
    name = named(patches)
    if len(back) > len(patches) and back[-1] == original:
        return None
    if len(patches) == 1:
        return f"{name} applies to {tree} but its result does not reverse-check; tree left unchanged"
    if len(back) <= len(patches):
        why = f"{label(patches, len(patches) - len(back))} does not reverse on what the patches after it leave"
    else:
        why = "reversing it, the last patch first, does not give back the files as they are"
    return f"{name} applies to {tree} but its result does not reverse-check ({why}); tree left unchanged"


def _change(tree: Path, patches: Sequence[Patch], direction: _Direction, journals: Path | None) -> SeriesResult:
    """Apply or revert once, all or nothing: a second call is a reported no-op; on any failure the tree is unchanged.

    A series is one change: the files as the whole series leaves them are computed first, and then written under
    one journal, so that a patch of it that does not fit leaves every file as it was.
    """
    name = named(patches)
    files = series_files(patches)
    with locked_tree(tree):
        journal_file = JournalFile.of(tree, journals=journals)
        if journal_file is None:
            raise BadInput(
                f"{tree} is not the top of a git work tree and no directory was given for its journal: an "
                f"{direction.action} cannot be made all-or-nothing there"
            )
        _finish_interrupted(tree, files, journal_file)
        contents = _read(tree, files)
        report = evaluate_series(contents, patches, committed=committed_files(tree, files))
        if report.state == direction.done:
            return SeriesResult(action="no-op", report=report, message=f"{name} {direction.done_message}")
        if report.state != direction.ready:
            raise SeriesConflict(
                f"{name} cannot be {direction.did} {direction.where} {tree}: {report.state}: {report.reason}", report
            )
        reverse = direction is _REVERT
        # A revert undoes the last patch first: each reverses on the tree the ones after it leave.
        updated = _all_the_way(contents, patches[::-1] if reverse else patches, reverse=reverse)
        if not reverse and (refusal := _irreversible(tree, patches, contents, updated)) is not None:
            raise SeriesConflict(refusal, report)
        _replace_all(tree, journal_file, _journal(direction.action, patches, contents, updated))
    return SeriesResult(action=direction.did, report=report, message=f"{direction.did} {name} {direction.where} {tree}")


def _one(tree: Path, patch: Patch, direction: _Direction, journals: Path | None) -> ApplyResult:
    """`_change` of one patch, reported as a patch's own report."""
    try:
        result = _change(tree, (patch,), direction, journals)
    except SeriesConflict as conflict:
        raise PatchConflict(str(conflict), conflict.report.reports[0]) from None
    return ApplyResult(action=result.action, report=result.report.reports[0], message=result.message)


def apply(tree: Path, patch: Patch, *, journals: Path | None = None) -> ApplyResult:
    """Apply once: a second call is a reported no-op; on any failure the tree is unchanged.

    `journals`: where the journal of a checkout that is not a git work tree goes (a git work tree keeps its
    own in its git directory); without it, such a checkout is refused.
    """
    return _one(tree, patch, _APPLY, journals)


def revert(tree: Path, patch: Patch, *, journals: Path | None = None) -> ApplyResult:
    """Undo an apply; a tree without the patch is a reported no-op. `journals` as in `apply`."""
    return _one(tree, patch, _REVERT, journals)


def apply_series(tree: Path, patches: Sequence[Patch], *, journals: Path | None = None) -> SeriesResult:
    """Apply every patch of the series in order, or none: a second call is a reported no-op. `journals` as in
    `apply`. A series partly applied is refused, naming the state of each patch, rather than guessed at."""
    return _change(tree, patches, _APPLY, journals)


def revert_series(tree: Path, patches: Sequence[Patch], *, journals: Path | None = None) -> SeriesResult:
    """Undo an apply of the series, the last patch first, or nothing; a tree without it is a reported no-op."""
    return _change(tree, patches, _REVERT, journals)
