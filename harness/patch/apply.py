"""Applying a patch to a checkout: state, idempotent and atomic apply, revert, with per-hunk detail.

`git apply` is the authority on whether a patch applies (zero fuzz, as users run
it); unidiff reads the hunks so that a conflict can be explained hunk by hunk.
Every git apply runs in a private staging directory holding copies of the files
the patch touches, so files the patch does not name are never opened for writing.

The checkout's files are read and written only inside it (harness.files: no symbolic
link is followed, only regular files are touched), and an apply or a revert is
all-or-nothing even across a crash (harness.patch.journal).
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


def read_files(tree: Path, patch: Patch) -> dict[str, bytes | None]:
    """The files the patch names, read inside `tree` only (None: absent); a link or a special file is refused."""
    return {name: read_in_tree(tree, name, limit=MAX_INPUT_BYTES) for name in patch.files}


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
    journal_file = JournalFile.of(tree, journals=journals)
    pending = journal_file.read() if journal_file is not None else None
    if journal_file is not None and pending is not None:
        raise BadInput(
            f"the {pending.action} of {pending.patch} in {tree} was interrupted ({journal_file.path} records it): "
            "run `mas-harness apply` or `mas-harness revert` on this checkout to finish it first"
        )
    return evaluate(read_files(tree, patch), patch, committed=committed_files(tree, patch.files))


def patched_contents(patch: Patch, contents: Mapping[str, bytes | None], *, reverse: bool = False) -> dict[str, bytes]:
    """The files as applying (or reversing) the patch leaves them, computed off the tree."""
    flags = ("--reverse",) if reverse else ()
    with _staging(contents) as root:
        ok, error = _git_apply(root, patch, *flags)
        if not ok:
            raise CommandFailed(["git", "apply", *flags], 1, error)
        return {name: (root / name).read_bytes() for name in patch.files}


def _finish_interrupted(tree: Path, patch: Patch, journal_file: JournalFile) -> None:
    """What a crashed run left: finish its apply or revert, and delete its temporary files."""
    finished = roll_forward(tree, journal_file, files=patch.files, limit=MAX_INPUT_BYTES)
    if finished is not None:
        log.warning(
            "finished the %s of %s in %s that was interrupted (%d files)",
            finished.action,
            finished.patch,
            tree,
            len(finished.entries),
        )
    stray = journal_file.remove_stray_temps()
    names = dict.fromkeys([*patch.files, *(entry.name for entry in (finished.entries if finished else ()))])
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


def _journal(action: str, patch: Patch, before: Mapping[str, bytes | None], after: Mapping[str, bytes]) -> Journal:
    entries = []
    for name, data in after.items():
        original = before[name]
        if original is None:
            raise PatchError(f"{patch.path.name} would create {name}; only modifications are supported")
        if original != data:
            entries.append(JournalEntry(name=name, before=original, after=data))
    return Journal(action=action, patches=(patch.path.name,), entries=tuple(entries))


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


def _change(tree: Path, patch: Patch, direction: _Direction, journals: Path | None) -> ApplyResult:
    """Apply or revert once, all or nothing: a second call is a reported no-op; on any failure the tree is unchanged."""
    name = patch.path.name
    with locked_tree(tree):
        journal_file = JournalFile.of(tree, journals=journals)
        if journal_file is None:
            raise BadInput(
                f"{tree} is not the top of a git work tree and no directory was given for its journal: an "
                f"{direction.action} cannot be made all-or-nothing there"
            )
        _finish_interrupted(tree, patch, journal_file)
        contents = read_files(tree, patch)
        report = evaluate(contents, patch, committed=committed_files(tree, patch.files))
        if report.state == direction.done:
            return ApplyResult(action="no-op", report=report, message=f"{name} {direction.done_message}")
        if report.state != direction.ready:
            raise PatchConflict(
                f"{name} cannot be {direction.did} {direction.where} {tree}: {report.state}: {report.reason}", report
            )
        updated = patched_contents(patch, contents, reverse=direction is _REVERT)
        if direction is _APPLY:
            # What the users' snippet checks before it applies: the result must reverse-check.
            with _staging(updated) as check_root:
                reversible, _ = _git_apply(check_root, patch, "--check", "--reverse")
            if not reversible:
                raise PatchConflict(
                    f"{name} applies to {tree} but its result does not reverse-check; tree left unchanged", report
                )
        _replace_all(tree, journal_file, _journal(direction.action, patch, contents, updated))
    return ApplyResult(action=direction.did, report=report, message=f"{direction.did} {name} {direction.where} {tree}")


def apply(tree: Path, patch: Patch, *, journals: Path | None = None) -> ApplyResult:
    """Apply once: a second call is a reported no-op; on any failure the tree is unchanged.

    `journals`: where the journal of a checkout that is not a git work tree goes (a git work tree keeps its
    own in its git directory); without it, such a checkout is refused.
    """
    return _change(tree, patch, _APPLY, journals)


def revert(tree: Path, patch: Patch, *, journals: Path | None = None) -> ApplyResult:
    """Undo an apply; a tree without the patch is a reported no-op. `journals` as in `apply`."""
    return _change(tree, patch, _REVERT, journals)
