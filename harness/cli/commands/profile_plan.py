"""`profile --dry-run`, and the profile choice `profile` shares with it: no engine, no build stack."""

from __future__ import annotations

from collections.abc import Sequence

from harness.analysis.patched import RunMemo, applying_patch
from harness.analysis.release_profile import ReleaseProfile, release_profile_of, upstream_profile
from harness.config.pins import newest_applying_pin
from harness.config.profiles import BASELINE, Profile, builtin_profiles, select_profiles
from harness.config.requests import ProfileRequest
from harness.config.run import Run
from harness.knobs import parse_build_args
from harness.report.plans import profile_plan_outcome
from harness.results import Outcome
from harness.upstream.cache import open_cache

DEFAULT_PROFILES = ("low-ram", "ci", BASELINE)


def profile_names(run: Run, names: Sequence[str]) -> list[str]:
    """The profiles asked for (default: low-ram, ci, upstream), refused before anything is fetched if unknown;
    `upstream` is made once the ref's Cargo.toml is read."""
    chosen = list(names) or list(DEFAULT_PROFILES)
    select_profiles({**builtin_profiles(), **run.pins.profiles}, [n for n in chosen if n != BASELINE])
    return chosen


def profiles_for(run: Run, names: Sequence[str], *, ref: str, release: ReleaseProfile) -> list[Profile]:
    available = {**builtin_profiles(), BASELINE: upstream_profile(release, ref=ref), **run.pins.profiles}
    return select_profiles(available, list(names))


def profile_plan(run: Run, request: ProfileRequest) -> Outcome:
    """Each profile's build args for the ref, and where each value comes from; nothing is built."""
    names = profile_names(run, request.names)
    extra_args = parse_build_args(request.spec.build_args)
    ref = request.ref or newest_applying_pin(run.pins)
    cache = open_cache(run)
    patched_ref, _ = applying_patch(cache, ref, pins=run.pins, memo=RunMemo())
    release = release_profile_of(cache, patched_ref.resolved)
    profiles = profiles_for(run, names, ref=ref, release=release)
    return profile_plan_outcome(ref=ref, release=release, profiles=profiles, base_build_args=extra_args)
