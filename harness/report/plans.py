"""`profile --dry-run`: the profiles a run would build, as an Outcome; nothing here needs the build stack."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.analysis.release_profile import ReleaseProfile
from harness.config.profiles import Profile
from harness.report.json_forms import release_profile_json
from harness.results import Column, Outcome, Result, Row, Status, Table


def profile_plan_outcome(
    *, ref: str, release: ReleaseProfile, profiles: Sequence[Profile], base_build_args: Mapping[str, str]
) -> Outcome:
    """`profile --dry-run`: each profile's build args and where each value comes from, nothing built."""
    entries: list[dict[str, Any]] = [
        {
            "name": p.name,
            "description": p.description,
            "build_args": {**base_build_args, **p.build_args},
            "sources": dict(p.sources),
        }
        for p in profiles
    ]
    table = Table(
        title=f"profiles for {ref} (dry run: nothing built)",
        columns=(Column(header="profile"), Column(header="build args"), Column(header="where from", optional=True)),
        rows=tuple(
            Row(
                cells=(
                    str(e["name"]),
                    " ".join(f"{k}={v}" for k, v in e["build_args"].items()) or "(patch defaults)",
                    "; ".join(f"{k}: {v}" for k, v in e["sources"].items()) or "-",
                )
            )
            for e in entries
        ),
    )
    return Outcome(
        command="profile",
        title=f"profile {ref} (dry run)",
        results=tuple(
            Result(
                name=str(e["name"]), status=Status.SKIPPED, reason="dry run: not built", group=f"profile.{e['name']}"
            )
            for e in entries
        ),
        tables=(table,),
        notes=(f"{ref}: upstream's release profile: {release.describe()}",),
        data={
            "ref": ref,
            "dry_run": True,
            "upstream_release_profile": release_profile_json(release),
            "profiles": entries,
        },
    )
