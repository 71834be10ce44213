"""What a run says around every command's findings: the tag `latest` stood for, a bump undone, whether the
upstream was asked, the stored verdicts and how upstream's build script ran. Each is a `Frame` the command's
Outcome is made with, so no Outcome is edited after it is made."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.report.json_forms import verdicts_json
from harness.results import Frame
from harness.upstream.releases import latest_note

if TYPE_CHECKING:
    # Types only: `status` renders through the views without loading the static checks.
    from harness.analysis.confine import Confinement
    from harness.analysis.static import StaticChecks


def latest_frame(latest: str | None, *, source: str) -> Frame:
    """A command asked for `latest` says first which tag that was (and `latest` in the JSON)."""
    if latest is None:
        return Frame()
    return Frame(first=(latest_note(latest, source=source),), data={"latest": latest})


def undone_frame(undone: str | None) -> Frame:
    """A bump an earlier, interrupted run left half made, and undone before this one: said before anything."""
    return Frame() if undone is None else Frame(first=(undone,), data={"undone": undone})


def offline_note(upstream: str) -> str:
    return (
        f"offline: refs were answered from the cache alone, without asking {upstream} where they point now; "
        "a branch or tag moved since it was cached is not seen (run without --offline to look)"
    )


def confinement_notes(confinement: Confinement) -> tuple[str, ...]:
    if confinement.confined:
        return ()
    return (f"upstream's build script: {confinement.describe()}",)


def scripts_json(confinement: Confinement) -> dict[str, object]:
    """How upstream's build script ran, for the JSON: `confined` with what, `unconfined`, or `not-run` and why."""
    if confinement.backend is None:
        return {"mode": "not-run", "reason": confinement.unavailable}
    return {"mode": "confined" if confinement.confined else "unconfined", "backend": str(confinement.backend)}


def checks_frame(checks: StaticChecks, *, upstream: str | None, offline: bool = False) -> Frame:
    """`verdicts` and `scripts` in the JSON (and `offline` when an upstream was asked), with notes when the upstream
    was not asked or the build script was not confined."""
    last = (offline_note(upstream),) if offline and upstream else ()
    data: dict[str, object] = {}
    if upstream is not None:
        data["offline"] = offline
    if checks.verdicts is not None:
        data["verdicts"] = verdicts_json(checks.verdicts)
    data["scripts"] = scripts_json(checks.confinement)
    return Frame(last=(*last, *confinement_notes(checks.confinement)), data=data)
