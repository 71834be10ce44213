"""Post-image drift: a ref's patched Dockerfile against its pin's lock, or against the nearest pin's patched file."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.analysis.patched import PatchedRef, RunMemo, resolve_pinned
from harness.config.pins import Pin, Pins
from harness.config.series import Choice, tag_version
from harness.errors import PinMismatch, UpstreamError
from harness.patch.apply import patched_contents
from harness.patch.patchfile import git_blob_id
from harness.upstream.cache import DOCKERFILE, UpstreamCache

# A unified diff longer than this is cut in the JSON report; the line count stays exact.
DIFF_LINES_SHOWN = 60


@dataclass(frozen=True, kw_only=True)
class Drift:
    """The patched Dockerfile of a ref against the nearest pin's (post-image drift)."""

    pin: str
    differs: bool | None
    """None when the pin's Dockerfile could not be read from this upstream (see `note`)."""
    compared: str
    """`lock`: the ref is that pin, compared by blob id with its lock; `text`: the two patched files compared;
    `unavailable`: not compared."""
    changed_lines: int | None
    """Lines removed plus lines added going from the pin's patched file to the ref's (text comparison only)."""
    diff: str | None
    """A unified diff, cut after DIFF_LINES_SHOWN lines."""
    note: str | None = None


def nearest_pin(pins: Pins, choice: Choice, patch_path: Path, *, memo: RunMemo) -> Pin | None:
    """The pin of the same patch whose release is the ref's, or else the nearest below (the lowest when none is)."""
    target = memo.real_path(patch_path)
    if target not in memo.pins_of_patch:
        memo.pins_of_patch[target] = sorted(
            [
                (version, pin)
                for pin in pins.pins
                if pin.patched_blob and memo.real_path(pins.patch_path(pin.patch)) == target
                if (version := tag_version(pin.tag)) is not None
            ],
            key=lambda item: item[0],
        )
    same = memo.pins_of_patch[target]
    if not same:
        return None
    wanted = tag_version(choice.version_tag) if choice.version_tag else None
    if wanted is None:
        return same[-1][1]
    lower = [pin for version, pin in same if version <= wanted]
    return lower[-1] if lower else same[0][1]


def compared_pin(patched_ref: PatchedRef, *, pins: Pins, memo: RunMemo) -> Pin | None:
    """The pin a ref's post-image is compared with by text: None for a ref compared with its own lock."""
    own = patched_ref.pin
    if own is not None and own.patched_blob and _same_patch(pins, own, patched_ref.patch_path, memo):
        return None
    return nearest_pin(pins, patched_ref.choice, patched_ref.patch_path, memo=memo)


def _same_patch(pins: Pins, pin: Pin, patch_path: Path, memo: RunMemo) -> bool:
    return memo.real_path(pins.patch_path(pin.patch)) == memo.real_path(patch_path)


def post_image_drift(cache: UpstreamCache, patched_ref: PatchedRef, *, pins: Pins, memo: RunMemo) -> Drift | None:
    """Whether the patched Dockerfile differs from the nearest pin's patched Dockerfile."""
    if patched_ref.patched is None:
        return None
    ours = git_blob_id(patched_ref.patched)
    own = patched_ref.pin
    if own is not None and own.patched_blob and _same_patch(pins, own, patched_ref.patch_path, memo):
        return Drift(pin=own.tag, differs=ours != own.patched_blob, compared="lock", changed_lines=None, diff=None)
    pin = nearest_pin(pins, patched_ref.choice, patched_ref.patch_path, memo=memo)
    if pin is None:
        return None
    if pin.tag not in memo.pin_patched:
        try:
            resolved = resolve_pinned(cache, pin.tag, pins)
        except (UpstreamError, PinMismatch) as exc:
            # A fork or mirror without the pinned tag (or with another one) says nothing about the ref itself.
            return Drift(
                pin=pin.tag, differs=None, compared="unavailable", changed_lines=None, diff=None, note=str(exc)
            )
        original = cache.read_blob(resolved.dockerfile_blob)
        _, patched = memo.evaluation(resolved.dockerfile_blob, original, memo.patch(pins.patch_path(pin.patch)))
        if patched is None:
            patched = patched_contents(memo.patch(pins.patch_path(pin.patch)), {DOCKERFILE: original})[DOCKERFILE]
        memo.pin_patched[pin.tag] = patched
    theirs = memo.pin_patched[pin.tag]
    if theirs == patched_ref.patched:
        return Drift(pin=pin.tag, differs=False, compared="text", changed_lines=0, diff=None)
    lines = list(
        difflib.unified_diff(
            theirs.decode(errors="replace").splitlines(keepends=True),
            patched_ref.patched.decode(errors="replace").splitlines(keepends=True),
            fromfile=f"{pin.tag}:{DOCKERFILE} (patched)",
            tofile=f"{patched_ref.resolved.ref}:{DOCKERFILE} (patched)",
            n=1,
        )
    )
    changed = sum(1 for line in lines[2:] if line[:1] in "+-")
    shown = lines[:DIFF_LINES_SHOWN]
    if len(lines) > DIFF_LINES_SHOWN:
        shown.append(f"... ({len(lines) - DIFF_LINES_SHOWN} more diff lines)\n")
    return Drift(pin=pin.tag, differs=True, compared="text", changed_lines=changed, diff="".join(shown))


def prefetch_compared_pins(cache: UpstreamCache, patched: Iterable[PatchedRef], *, pins: Pins, memo: RunMemo) -> None:
    """Resolve and read the pins that refs without their own lock are compared with, all in one go."""
    tags = {
        pin.tag
        for patched_ref in patched
        if patched_ref.patched is not None
        if (pin := compared_pin(patched_ref, pins=pins, memo=memo)) is not None
    }
    try:
        resolved = cache.resolve_all(sorted(tags))
        cache.read_blobs(r.dockerfile_blob for r in resolved.values())
    except UpstreamError:
        pass  # each is tried again on its own, and the one that fails is noted on the refs compared with it
