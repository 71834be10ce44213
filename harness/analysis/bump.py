"""`bump`: move the superproject's submodule to a ref and make the patch fit, as one change, all or nothing.

The plan is what `compat --bump-to` and `refresh` already compute: the patch as it is against the ref, and when
it does not fit, the user's patch rebased by three-way merge (taken when every hunk merges and the static checks
hold), else the harness's variant for the ref's range (taken when it applies and the static checks hold).
Carrying it out writes the user's git state (the submodule's checkout, the patch file, the index), so every
step runs after a snapshot of all three, and any failure, an interrupt included, puts them back as they were.

A series is bumped through its Dockerfile patch, as above; the user's other patches must apply at the ref as
they are (each on the tree the ones before it leave), since the harness has no variant for them: one that does
not is reported, by patch and hunk, and the bump is not made. Every patch of the series is staged with the
gitlink.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness import __version__
from harness.analysis.patched import Analysis, patch_ref, resolve_pinned
from harness.analysis.refresh_run import refreshed_candidate
from harness.analysis.release_profile import describe_change, release_profile_of
from harness.analysis.static import StaticChecks
from harness.analysis.submodule_checks import (
    OthersAt,
    SuperprojectCheck,
    check_bump,
    dockerfile_patch,
    others_at,
    verify,
)
from harness.config.pins import shown_path
from harness.config.requests import BumpRequest, Take
from harness.config.run import Run
from harness.config.series import tag_version
from harness.config.superproject import SuperprojectConfig
from harness.errors import BadInput, CheckFailed, CommandFailed, HarnessError
from harness.files import atomic_write
from harness.patch.apply import State, label
from harness.patch.patchfile import Patch
from harness.patch.refresh_rebase import RefreshTerms
from harness.upstream import bump_state
from harness.upstream.cache import UpstreamCache
from harness.upstream.submodule import Submodule, exact_tag, inspect_submodule, open_upstream

TAKE_ORDER: tuple[Take, ...] = ("refresh", "variant")
"""What a bump tries, in order, for a patch that no longer fits: the user's own patch first."""
How = Literal["unchanged", "refreshed", "variant"]


@dataclass(frozen=True, kw_only=True)
class PatchChoice:
    how: How
    data: bytes
    """The patch file as the bump leaves it."""
    summary: str
    hunks: tuple[str, ...]
    """How each hunk fares at the ref, one line each."""


@dataclass(frozen=True, kw_only=True)
class BumpPlan:
    config: SuperprojectConfig
    patch: Path
    """The Dockerfile patch: the one a bump may rewrite (of a series, the one that changes the Dockerfile)."""
    submodule: Submodule
    from_label: str
    to_label: str
    commit: str
    """The commit the submodule is checked out at afterwards, as its repository names it."""
    fetch_tag: str | None
    needs_fetch: bool
    check: SuperprojectCheck
    """The patch as it is, against the ref (compat --bump-to's answer)."""
    choice: PatchChoice | None
    """None when nothing fits: the bump is not made."""
    refused: tuple[str, ...] = ()
    """Why each way of making the patch fit was not taken."""
    latest: str | None = None
    latest_from: str = ""
    profile_change: str | None = None
    """One line when upstream's release profile differs between `from` and `to`."""
    others: tuple[str, ...] = ()
    """A series' other patches at the ref, one line each (they are staged as they are)."""

    @property
    def patch_shown(self) -> str:
        return shown_path(self.patch, self.config.root)

    @property
    def staged(self) -> list[str]:
        """What the bump stages: the gitlink and every patch (of a series, all of them)."""
        return [self.submodule.path, *(shown_path(patch, self.config.root) for patch in self.config.patches)]

    @property
    def moves(self) -> bool:
        return self.submodule.checked_out != self.commit

    @property
    def up_to_date(self) -> bool:
        return not self.moves and self.choice is not None and self.choice.how == "unchanged"

    def steps(self) -> list[str]:
        sub = self.submodule
        steps = []
        if self.needs_fetch:
            steps.append(f"fetch {self.fetch_tag or self.commit[:12]} into {sub.path} from its remote")
        if self.moves:
            steps.append(f"check out {self.to_label} ({self.commit[:12]}) in {sub.path}")
        if self.choice is not None and self.choice.how != "unchanged":
            steps.append(f"write {self.patch_shown}: {self.choice.summary}")
        steps.append(f"stage {' and '.join(self.staged)}")
        steps.append(f"run verify at {self.to_label}")
        return steps

    def message(self, *, checked: bool) -> str:
        """The commit message: from -> to, the patch's hunks there, what changed in upstream's release profile."""
        assert self.choice is not None
        sub = self.submodule
        title = (
            f"Bump {sub.path} from {self.from_label} to {self.to_label}"
            if self.moves
            else f"Fit {self.patch_shown} to {sub.path} at {self.to_label}"
            + (f" (bumped from {self.from_label})" if self.from_label != self.to_label else "")
        )
        lines = [title, "", f"{self.patch_shown}: {self.choice.summary}"]
        lines += [f"  {hunk}" for hunk in self.choice.hunks]
        lines += list(self.others)
        lines += [f"Not taken: {why}" for why in self.refused]
        lines.append("")
        lines.append(self.profile_change or "Upstream's release profile ([profile.release]) is unchanged.")
        lines.append("")
        verdict = "passes" if checked else "is to pass"
        lines.append(f"Checked with mas-harness {__version__}: `mas-harness verify` {verdict} at {self.to_label}.")
        return "\n".join(lines) + "\n"


def _label(sub: Submodule, commit: str) -> str:
    return exact_tag(sub, commit) or commit[:12]


def _refuse_what_would_mix(config: SuperprojectConfig, sub: Submodule, *, ref: str | None) -> None:
    """A bump commits the gitlink and the patch alone: anything else changed would be mixed in, or lost."""
    if sub.checked_out is None:
        raise BadInput(f"submodule {sub.path} is not checked out: run `git submodule update --init {sub.path}`")
    dirty = bump_state.dirty_paths(sub.work_tree)
    if dirty:
        raise BadInput(
            f"submodule {sub.path} has local changes ({', '.join(dirty[:5])}{' …' if len(dirty) > 5 else ''}): "
            "commit, stash or revert them first (`mas-harness revert` undoes an apply)"
        )
    for path in config.patches:
        if not path.resolve().is_relative_to(config.root.resolve()):
            raise BadInput(f"bump commits the patch with the gitlink, and {path} is outside {config.root}")
    patches = [shown_path(path, config.root) for path in config.patches]
    # The gitlink and the patches are what a bump stages: a bump staged before (or a bot's gitlink move) is built on.
    allowed = set(bump_state.from_top(config.root, [sub.path, *patches]))
    staged = [p for p in bump_state.staged_paths(config.root) if p not in allowed]
    if staged:
        raise BadInput(
            f"staged changes in {config.root} would go into the bump's commit: {', '.join(staged[:5])}; "
            "commit or unstage them first"
        )
    unstaged = bump_state.unstaged_paths(config.root, patches)
    if unstaged:
        raise BadInput(
            f"{unstaged[0]} has changes not staged: commit or stash them first (the bump stages it, and may rewrite it)"
        )
    if ref is not None and not sub.at_recorded_commit:
        raise BadInput(
            f"submodule {sub.path} is checked out at {sub.checked_out[:12]}, the superproject records "
            f"{sub.recorded_commit[:12]}: run `git submodule update {sub.path}` first"
        )


@dataclass(frozen=True, kw_only=True)
class _Target:
    """Where a bump goes, as the plan's steps read it."""

    cache: UpstreamCache
    ref: str
    """The ref as the cache resolves it."""
    label: str
    """The ref as the user is shown it."""
    users: Path
    """The user's Dockerfile patch."""


def _choose(
    plan_check: SuperprojectCheck, target: _Target, *, run: Run, analysis: Analysis, request: BumpRequest
) -> tuple[PatchChoice | None, tuple[str, ...]]:
    """How the user's Dockerfile patch is made to fit at the ref, and why each other way was not taken."""
    compat = plan_check.compat
    # Read as every input is (a regular file, within the limit), once: the refresh below rebases these bytes.
    patch = analysis.memo.patch(target.users)
    current = patch.data
    if compat.ok:
        hunks = tuple(h.describe() for h in compat.hunks)
        return PatchChoice(how="unchanged", data=current, summary="fits as it is", hunks=hunks), ()
    if compat.state == State.UPSTREAMED:
        return None, (f"upstream already has every change of the patch at {plan_check.ref}: drop the patch",)
    cache, ref = target.cache, target.ref
    refused = [f"as it is: {compat.reason}"]
    for how in (request.take,) if request.take else TAKE_ORDER:
        if how == "refresh":
            refresh, findings = refreshed_candidate(
                cache,
                patch,
                ref,
                pins=run.pins,
                checks=analysis.checks,
                terms=RefreshTerms(today=request.today),
            )
            failed = [f.check for f in findings or () if not f.ok]
            if refresh.status == "clean" and refresh.candidate is not None and not failed:
                hunks = tuple(h.describe() for h in refresh.hunks)
                summary = "your patch, rebased by three-way merge (every hunk merged)"
                choice = PatchChoice(how="refreshed", data=refresh.candidate, summary=summary, hunks=hunks)
                return choice, tuple(refused)
            why = refresh.summary() + (f"; static checks fail: {', '.join(dict.fromkeys(failed))}" if failed else "")
            refused.append(f"rebased: {why}")
        else:
            suggestion = plan_check.suggestion
            variant = patch_ref(cache, ref, pins=run.pins, memo=analysis.memo)
            if suggestion is not None and suggestion.applies and suggestion.static_ok:
                hunks = tuple(h.describe() for h in variant.report.hunks)
                summary = f"the harness's {suggestion.variant} variant ({suggestion.reason.strip()})"
                choice = PatchChoice(how="variant", data=variant.patch_path.read_bytes(), summary=summary, hunks=hunks)
                return choice, tuple(refused)
            state = "does not apply" if suggestion is None or not suggestion.applies else "fails a static check"
            name = suggestion.variant if suggestion else variant.choice.variant.name
            refused.append(f"the harness's {name} variant {state}")
    return None, tuple(refused)


def _others_at(target: _Target, choice: PatchChoice, *, run: Run, analysis: Analysis) -> OthersAt:
    """A series' other patches at the ref, with the Dockerfile patch as the bump leaves it."""
    config = run.in_superproject()
    return others_at(
        target.cache,
        target.cache.resolve(target.ref),
        [analysis.memo.patch(path) for path in config.patches],
        fitted=Patch.parse(choice.data, path=target.users),
        shown=lambda path: shown_path(path, config.root),
    )


def undo_interrupted(config: SuperprojectConfig, *, dry_run: bool) -> str | None:
    """Before a bump: undo one that was killed midway (its journal says what it changed); a note saying so."""
    journal = bump_state.journal_path(config.root)
    if not journal.exists():
        return None
    if dry_run:
        raise BadInput(f"an interrupted bump left {journal}: run `mas-harness bump` (not --dry-run) to undo it first")
    state = bump_state.recover(config.root)
    if state is None:
        return None
    return (
        f"undid an interrupted bump first: the submodule is back at {state.head[:12]}, "
        "the index and the patch as they were"
    )


def _bumped_from(config: SuperprojectConfig, sub: Submodule) -> str:
    """Where a bump without REF comes from: the checkout, else the committed gitlink, else the parent commit's
    (a bot's pull request has committed the move already); the recorded commit when none differs."""
    candidates = [sub.checked_out, sub.committed_commit]
    parent = bump_state.gitlink_at(config.root, "HEAD^", sub.path)
    candidates.append(parent)
    return next((c for c in candidates if c is not None and c != sub.recorded_commit), sub.recorded_commit)


def _profile_change(run: Run, sub: Submodule, from_commit: str, check: SuperprojectCheck) -> str | None:
    if from_commit == sub.recorded_commit or check.compat.release_profile is None:
        return check.profile_change
    before = open_upstream(run, sub, from_commit)
    profile = release_profile_of(before.cache, before.cache.resolve(before.ref))
    return describe_change(profile, check.compat.release_profile, old=_label(sub, from_commit), new=check.compat.ref)


def plan_bump(run: Run, request: BumpRequest, *, analysis: Analysis) -> BumpPlan:
    """What the bump would do, computed without writing anything."""
    config = run.in_superproject()
    sub = inspect_submodule(config)
    _refuse_what_would_mix(config, sub, ref=request.ref)
    users = dockerfile_patch(config, analysis.memo)  # a bad patch is reported before any fetch
    asked = request.ref if request.ref is not None else sub.recorded_commit
    upstream = open_upstream(run, sub, asked, pre=request.pre)
    resolved = resolve_pinned(upstream.cache, upstream.ref, run.pins)
    commit = resolved.commit
    to_ref = upstream.latest or (request.ref if request.ref is not None else sub.recorded_commit)
    check = check_bump(run, to_ref, analysis=analysis)
    to_label = check.compat.ref
    target = _Target(cache=upstream.cache, ref=upstream.ref, label=to_label, users=users)
    choice, refused = _choose(check, target, run=run, analysis=analysis, request=request)
    others: tuple[str, ...] = ()
    if choice is not None and config.is_series:
        rest = _others_at(target, choice, run=run, analysis=analysis)
        others = rest.fits
        if rest.blocked:
            choice, refused = None, (*refused, *rest.blocked)
    from_commit = sub.checked_out if request.ref is not None else _bumped_from(config, sub)
    assert from_commit is not None
    fetch_tag = to_label if tag_version(to_label) is not None else None
    return BumpPlan(
        config=config,
        patch=users,
        submodule=sub,
        from_label=_label(sub, from_commit),
        to_label=to_label,
        commit=commit,
        fetch_tag=fetch_tag,
        needs_fetch=not bump_state.has_commit(sub.work_tree, commit),
        check=check,
        choice=choice,
        refused=refused,
        latest=upstream.latest,
        latest_from=upstream.latest_from,
        profile_change=_profile_change(run, sub, from_commit, check),
        others=others,
    )


@dataclass(frozen=True, kw_only=True)
class BumpDone:
    final: SuperprojectCheck
    """verify on the result, as staged."""
    message: str
    committed: str | None


class StepFailed(CheckFailed):
    """A step of the bump found the result wrong; everything was put back (exit 1)."""


def _why_not(check: SuperprojectCheck) -> str:
    """Why verify failed after the bump: the Dockerfile patch's reason, else the first patch of the series that
    does not apply."""
    if check.compat.ok or check.series is None:
        return check.compat.reason
    series = check.series
    index, report = next((i, r) for i, r in enumerate(series.reports) if r.state != State.APPLIES)
    return f"{label(series.patches, index)}: {report.state}: {report.reason}"


@contextmanager
def _all_or_nothing(state: bump_state.GitState, step: list[str]) -> Iterator[None]:
    try:
        yield
    except HarnessError as exc:
        bump_state.restore(state)
        exc.args = (f"bump stopped at `{step[0]}`: {exc}; the submodule, the index and the patch are as they were",)
        raise
    except BaseException:
        bump_state.restore(state)
        raise


def carry_out(plan: BumpPlan, request: BumpRequest, *, run: Run, checks: StaticChecks) -> BumpDone:
    """Make the bump: fetch, check out, write the patch, stage, verify, commit (with the request's `commit`);
    or, on any failure, nothing."""
    message_file = request.message_file
    if plan.choice is None:
        raise BadInput("nothing fits: the bump is not made")
    config, sub = plan.config, plan.submodule
    # The message file is put back too: a bump that is not made leaves no message of it.
    state = bump_state.snapshot(
        config.root,
        sub.work_tree,
        [*config.patches, *([message_file] if message_file else [])],
        staged=bump_state.from_top(config.root, plan.staged),
        after={plan.patch: plan.choice.data},
    )
    step = ["fetch"]
    with _all_or_nothing(state, step):
        if plan.needs_fetch:
            bump_state.fetch_into(sub.work_tree, commit=plan.commit, tag=plan.fetch_tag)
        step[0] = "check out"
        if plan.moves:
            bump_state.check_out(sub.work_tree, plan.commit)
        step[0] = "write the patch"
        if plan.choice.how != "unchanged":
            atomic_write(plan.patch, plan.choice.data)
        step[0] = "stage"
        bump_state.stage(config.root, plan.staged)
        step[0] = "verify"
        # A memo of its own: the one the plan used knows the patch file as it was before this bump wrote it.
        final = verify(run, analysis=Analysis(checks=checks))
        if not final.ok:
            raise StepFailed(f"{final.compat.ref}: {_why_not(final)}")
        message = plan.message(checked=True)
        if message_file is not None:
            step[0] = "write the message"
            atomic_write(message_file, message.encode())
        committed = None
        if request.commit:
            step[0] = "commit"
            try:
                committed = bump_state.commit(config.root, message)
            except CommandFailed as exc:
                # A commit hook that says no is a check of the user's that failed, not bad input.
                raise StepFailed(f"git refused the commit: {exc}") from None
    bump_state.finish(state)
    return BumpDone(final=final, message=message, committed=committed)
