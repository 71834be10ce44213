"""The result model: an Outcome is made once, with the run's frame around the command's own notes and JSON."""

from __future__ import annotations

from harness.results import Frame, Outcome, Result, Status


def test_an_outcome_shows_its_frame_around_its_own_notes_and_merges_its_json() -> None:
    run = Frame(first=("latest is v1.19.0",), last=("offline",), data={"latest": "v1.19.0", "offline": True})
    undone = Frame(first=("undid a bump",), data={"undone": "undid a bump"})
    outcome = Outcome(
        command="compat",
        title="t",
        results=(Result(name="state", status=Status.OK, reason="applies"),),
        notes=("own",),
        data={"mode": "pins"},
        frame=run.within(undone),
    )
    assert outcome.shown_notes == ("undid a bump", "latest is v1.19.0", "own", "offline")
    assert outcome.notes == ("own",), "the command's own notes stay its own"
    document = outcome.document()
    assert (document["mode"], document["latest"], document["offline"], document["undone"]) == (
        "pins",
        "v1.19.0",
        True,
        "undid a bump",
    )
