"""Build one ref once per knob profile, from the same cache state, and keep what each build cost.

The figures are computed from the samples themselves (`figures()`), so that a
report's table, its JSON and its plot can be traced back to one list of numbers.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
from rich.console import Console

from harness.build.builders import BuildTarget
from harness.build.connect import remove_images
from harness.build.figures import figures_from_json
from harness.build.prepare import BuildInputs
from harness.build.runner import BuildOptions, BuildReport, Check, build_ref
from harness.build.sampler import Figures, Sample, SamplerReport
from harness.build.tracing import TraceOutcome
from harness.config.profiles import BASELINE, Profile
from harness.config.requests import ProfileRequest
from harness.errors import BadInput
from harness.files import MAX_REPORT_BYTES, read_input, write_json
from harness.knobs import DESCRIBE, RUSTC_VERSION, parse_build_args

log = logging.getLogger("harness")

CACHE_STATE = (
    "target directory cold (its cache mount gets an id of its own per profile, dropped afterwards); compile step "
    "rebuilt (a per-run VERGEN_GIT_DESCRIBE); cargo registry cache mount shared (may be warm); earlier layers "
    "(cargo-auditable install, cargo fetch) may come from the layer cache"
)


@dataclass(frozen=True, kw_only=True)
class ProfileRun:
    profile: Profile
    build: BuildReport

    @property
    def figures(self) -> Figures:
        return self.build.sampler.figures

    @property
    def wall_seconds(self) -> float:
        return self.build.sampler.wall_seconds


def _ratio(value: float | None, baseline: float | None) -> float | None:
    return round(value / baseline, 3) if value is not None and baseline else None


@dataclass(frozen=True, kw_only=True)
class ProfileReport:
    ref: str
    source: str
    interval_seconds: float
    cache_state: str
    machine: Mapping[str, object]
    runs: tuple[ProfileRun, ...]

    @property
    def ok(self) -> bool:
        return all(run.build.ok for run in self.runs)

    @property
    def baseline(self) -> ProfileRun | None:
        return next((run for run in self.runs if run.profile.name == BASELINE), None)

    def ratios(self, run: ProfileRun) -> dict[str, float | None]:
        """This profile's figures over the `upstream` profile's: 0.5 is half of what upstream's settings cost."""
        base = self.baseline
        if base is None:
            return {}
        if not (run.build.sampler.available and base.build.sampler.available):
            # A build the host could not see has no sampled figures to compare: unknown, not zero.
            return {
                "wall": _ratio(run.wall_seconds, base.wall_seconds),
                "binary_size": _ratio(run.build.binary_size_bytes, base.build.binary_size_bytes),
            }
        return {
            "peak_rss": _ratio(run.figures.peak_rss_bytes, base.figures.peak_rss_bytes),
            "peak_cgroup": _ratio(run.figures.peak_cgroup_bytes, base.figures.peak_cgroup_bytes),
            "peak_cgroup_anon": _ratio(run.figures.peak_cgroup_anon_bytes, base.figures.peak_cgroup_anon_bytes),
            "wall": _ratio(run.wall_seconds, base.wall_seconds),
            "binary_size": _ratio(run.build.binary_size_bytes, base.build.binary_size_bytes),
        }

    def as_json(self) -> dict[str, object]:
        return {
            "ref": self.ref,
            "source": self.source,
            "ok": self.ok,
            "interval_seconds": self.interval_seconds,
            "cache_state": self.cache_state,
            "machine": dict(self.machine),
            "baseline": BASELINE if self.baseline else None,
            "profiles": [
                {
                    "name": run.profile.name,
                    "description": run.profile.description,
                    "profile_build_args": dict(run.profile.build_args),
                    "sources": dict(run.profile.sources),
                    "build_args": run.build.build_args,
                    "ok": run.build.ok,
                    "checks": [
                        {"name": c.name, "ok": c.ok, "detail": c.detail, "skipped": c.skipped} for c in run.build.checks
                    ],
                    "wall_seconds": run.wall_seconds,
                    **run.build.sampler.figures_json(),
                    "figures_by_source": run.build.figures.as_json() if run.build.figures else None,
                    "peak_rustc_crate": run.build.sampler.peak_rustc_crate,
                    "peak_rustc_crate_rss_bytes": run.build.sampler.peak_rustc_crate_rss_bytes,
                    "rustc_flags": run.build.sampler.rustc_flags,
                    "cgroup_version": run.build.sampler.cgroup_version,
                    "binary_size_bytes": run.build.binary_size_bytes,
                    "binaries": list(run.build.binaries),
                    "version_output": run.build.version_output,
                    "air_gapped": run.build.air_gapped,
                    "sampler_wall_seconds": run.build.sampler.wall_seconds,
                    "ratios_to_baseline": self.ratios(run),
                    "deviations": list(run.build.deviations),
                    "log": run.build.log,
                    "trace": run.build.trace.as_json() if run.build.trace else None,
                    "samples": [vars(s) for s in run.build.sampler.samples],
                }
                for run in self.runs
            ],
        }


def load_profile_report(path: Path) -> ProfileReport:
    """A report written by `run_profiles`, read back so it can be rendered again without building."""
    text = read_input(path, "profile report", limit=MAX_REPORT_BYTES)
    if text is None:
        raise BadInput(f"{path}: no such profile report")
    try:
        data = json.loads(text)
        runs = []
        for entry in data["profiles"]:
            samples = [Sample(**sample) for sample in entry["samples"]]
            by_source = entry.get("figures_by_source") or {}
            sampler = SamplerReport(
                peak_rss_bytes=max((s.rss_bytes for s in samples), default=0),
                max_concurrent_rustc=max((s.rustc for s in samples), default=0),
                rustc_flags=entry.get("rustc_flags") or {},
                peak_rustc_crate=entry.get("peak_rustc_crate"),
                peak_rustc_crate_rss_bytes=entry.get("peak_rustc_crate_rss_bytes") or 0,
                wall_seconds=entry["wall_seconds"],
                interval_seconds=data["interval_seconds"],
                cgroup_version=entry.get("cgroup_version"),
                samples=samples,
                unavailable=(by_source.get("host_sampler") or {}).get("reason"),
            )
            build = BuildReport(
                ref=data["ref"],
                source=data["source"],
                image=None,
                build_args=entry["build_args"],
                air_gapped=entry.get("air_gapped", True),
                deviations=tuple(entry.get("deviations", ())),
                binaries=tuple(entry.get("binaries", ())),
                version_output=entry.get("version_output"),
                build_info=None,
                sampler=sampler,
                log=entry.get("log", ""),
                checks=tuple(Check(**check) for check in entry["checks"]),
                binary_size_bytes=entry.get("binary_size_bytes"),
                figures=figures_from_json(sampler, by_source) if by_source else None,
                trace=TraceOutcome.from_json(entry["trace"]) if isinstance(entry.get("trace"), dict) else None,
            )
            profile = Profile(
                name=entry["name"],
                description=entry.get("description", ""),
                build_args=_knobs(entry),
                sources=entry.get("sources", {}),
            )
            runs.append(ProfileRun(profile=profile, build=build))
        return ProfileReport(
            ref=data["ref"],
            source=data["source"],
            interval_seconds=data["interval_seconds"],
            cache_state=data.get("cache_state", ""),
            machine=data.get("machine", {}),
            runs=tuple(runs),
        )
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BadInput(f"{path}: not a profile report written by `profile` ({type(exc).__name__}: {exc})") from None


def _knobs(entry: Mapping[str, object]) -> dict[str, str]:
    """The profile's own build args: the recorded ones less what every build of a run was given."""
    recorded = entry.get("profile_build_args")
    if isinstance(recorded, dict):
        return {str(k): str(v) for k, v in recorded.items()}
    build_args = entry.get("build_args")
    ignored = {DESCRIBE, RUSTC_VERSION}
    return {str(k): str(v) for k, v in build_args.items() if k not in ignored} if isinstance(build_args, dict) else {}


def machine_facts() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "kernel": platform.release(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def run_profiles(
    inputs: BuildInputs,
    *,
    profiles: Sequence[Profile],
    request: ProfileRequest,
    report_dir: Path,
    console: Console | None = None,
) -> ProfileReport:
    """One build per profile, one after the other (a concurrent build would share the CPUs and the samples), each
    traced from inside the build: `<report_dir>/<profile>/trace.json`."""
    if not profiles:
        raise BadInput("no profile to build")
    interval, keep_images = request.interval, request.keep_images
    base_build_args = parse_build_args(request.spec.build_args)
    machine = machine_facts()
    runs: list[ProfileRun] = []
    for profile in profiles:
        log.info("profile %s: %s", profile.name, profile.description)
        options = BuildOptions(
            report_dir=report_dir / profile.name, sample_interval=interval, trace=True, keep_target_cache=keep_images
        )
        build = build_ref(inputs, {**base_build_args, **profile.build_args}, options, console=console)
        runs.append(ProfileRun(profile=profile, build=build))
        if not keep_images:
            _remove_images(build, inputs.target)
        report = ProfileReport(
            ref=inputs.ref,
            source=inputs.source,
            interval_seconds=interval,
            cache_state=CACHE_STATE,
            machine=machine,
            runs=tuple(runs),
        )
        # Written after every profile: a run of hours that is cut short still leaves what it measured.
        report_dir.mkdir(parents=True, exist_ok=True)
        write_json(report_dir / "profile.json", report.as_json())
    return report


def _remove_images(build: BuildReport, target: BuildTarget) -> None:
    # A builder image is 1-2 GB; a profile run makes one per profile and only needed its figures.
    if build.image:
        remove_images([build.image], target=target)
    for archive in build.archives:
        archive.unlink(missing_ok=True)
