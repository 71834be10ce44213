"""The command line: parse, call one function of a lower layer, map errors to exit codes.

Exit codes: 0 all as expected, 1 a check failed, 2 bad input, 3 the machine lacks
something the harness needs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from harness import resources
from harness.analysis.compat import (
    StaticResult,
    check_refs,
    latest_release_tag,
    patch_ref,
    static_check_ref,
    verify_pin,
)
from harness.analysis.release_profile import ReleaseProfile, parse_release_profile
from harness.analysis.static import check_patched
from harness.analysis.superproject import check_bump, verify, work_tree_for
from harness.build.measure import load_profile_report, run_profiles
from harness.build.runner import build_and_check, build_context, check_engine, plan_build, registry_reachable
from harness.config.pins import Pins, Settings, newest_applying_pin, resolve_settings
from harness.config.profiles import BASELINE, builtin_profiles, select_profiles, upstream_profile
from harness.config.superproject import SuperprojectConfig, SuperprojectFlags, resolve_superproject
from harness.errors import BadInput, CheckFailed, HarnessError
from harness.knobs import CI_BUILD_ARGS
from harness.patch.engine import ApplyResult, PatchReport, apply, committed_files, revert, status
from harness.patch.patchfile import Patch, git_blob_id
from harness.patch.rebase import refresh_onto
from harness.files import atomic_write, refuse_clobber
from harness.report.formats import Case, append_step_summary, compat_cases, publish, static_cases
from harness.report.profile import profile_table, publish_profile, write_profile_outputs
from harness.report.views import (
    compat_json,
    findings_table,
    print_compat,
    print_refresh,
    print_superproject_check,
    refresh_json,
    static_json,
    summary_markdown,
    summary_rows,
    summary_table,
    superproject_json,
)
from harness.upstream.cache import CARGO_TOML, DOCKERFILE, UpstreamCache, UpstreamSource

log = logging.getLogger("harness")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pins", type=Path, help="pins file (default: pins.toml of the project, or $MAS_HARNESS_PINS)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command run")


def _ci_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--junit", type=Path, metavar="XML", help="also write JUnit XML: one case per ref and check")
    parser.add_argument(
        "--markdown",
        type=Path,
        help="also write a Markdown summary to this file ($GITHUB_STEP_SUMMARY, when set, gets it either way)",
    )


def _publish(args: argparse.Namespace, title: str, cases: Sequence[Case]) -> None:
    publish(title=title, cases=cases, junit=args.junit, markdown=args.markdown)


def _upstream_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--upstream", help="git URL, local repository or bundle (default: $MAS_UPSTREAM, then the pins)"
    )
    parser.add_argument("--cache-dir", type=Path, help="checkout cache (default: $MAS_HARNESS_CACHE or XDG cache)")


def _superproject_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "superproject mode", "MAS as a git submodule; defaults from [tool.mas-harness] in the superproject's pyproject"
    )
    group.add_argument("--superproject", type=Path, help="the superproject (default: found from . upward)")
    group.add_argument("--submodule", type=Path, help="path of the MAS submodule (overrides `submodule`)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mas-harness", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    for name, summary in (
        ("status", "report whether the patch applies, is applied, upstreamed or conflicts"),
        ("apply", "apply the patch once (a second apply is a no-op); atomic"),
        ("revert", "undo an apply"),
    ):
        cmd = sub.add_parser(name, help=summary, description=summary)
        cmd.add_argument(
            "--checkout", type=Path, help="upstream checkout (default: a superproject's submodule found from ., else .)"
        )
        cmd.add_argument("--patch", type=Path, help="patch file (default: the one the pins name for this Dockerfile)")
        _superproject_options(cmd)
        _common(cmd)

    compat = sub.add_parser("compat", help="check the patch against upstream refs (default: every pin)")
    _upstream_options(compat)
    compat.add_argument("ref_args", nargs="*", metavar="REF", help="tag, branch or commit of the upstream")
    compat.add_argument("--ref", action="append", dest="refs", metavar="REF", help="tag, branch or commit; repeatable")
    compat.add_argument(
        "--latest", action="store_true", help="also the newest release tag the upstream has (git ls-remote, no clone)"
    )
    compat.add_argument("--patch", type=Path, help="force this patch for every ref (default: the series' variant)")
    compat.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    compat.add_argument("--output", type=Path, help="also write the JSON list to this file")
    _ci_report_options(compat)
    compat.add_argument(
        "--bump-to", metavar="REF", help="in a superproject: check the patch against REF of the submodule's upstream"
    )
    _superproject_options(compat)
    _common(compat)

    verify_cmd = sub.add_parser(
        "verify", help="in a superproject: the patch against the submodule's recorded commit, with static checks"
    )
    _upstream_options(verify_cmd)
    verify_cmd.add_argument("--patch", type=Path, help="patch file (overrides `patch`)")
    verify_cmd.add_argument("--json", action="store_true", help="print JSON instead of tables")
    verify_cmd.add_argument("--output", type=Path, help="also write the JSON to this file")
    _superproject_options(verify_cmd)
    _common(verify_cmd)

    check = sub.add_parser("check", help="semantic and lint checks of a patched Dockerfile")
    _upstream_options(check)
    target = check.add_mutually_exclusive_group()
    target.add_argument("--dockerfile", type=Path, help="an already patched Dockerfile")
    target.add_argument(
        "--ref",
        action="append",
        dest="refs",
        metavar="REF",
        help="patch this ref's Dockerfile and check it; repeatable (default: every pin that applies)",
    )
    check.add_argument("--pristine", type=Path, help="with --dockerfile: the upstream original, to lint the change")
    check.add_argument("--patch", type=Path, help="with --ref: force this patch")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.add_argument("--output", type=Path, help="also write the JSON to this file")
    _ci_report_options(check)
    _common(check)

    summarize = sub.add_parser("summary", help="one table from the reports a verify run wrote")
    summarize.add_argument(
        "--reports", type=Path, default=Path("reports"), help="directory of verify.xml, static.json, compat.json"
    )
    summarize.add_argument(
        "--pytest",
        action="append",
        metavar="XML",
        help="pytest JUnit file in --reports to summarise, repeatable (with no --pytest, --refs or --profile: "
        "verify.xml, static.json, compat.json and every profile*/profile.json)",
    )
    summarize.add_argument(
        "--refs", action="append", metavar="JSON", help="static or compat JSON report in --reports, repeatable"
    )
    summarize.add_argument(
        "--profile", action="append", dest="profiles", metavar="JSON", help="profile.json in --reports, repeatable"
    )
    summarize.add_argument("--markdown", type=Path, help="also write the summary as Markdown to this file")
    summarize.add_argument("--json", dest="json_output", type=Path, help="also write the summary as JSON to this file")
    _common(summarize)

    _add_build_parser(sub)
    _add_profile_parser(sub)
    _add_refresh_parser(sub)
    return parser


def _build_options(parser: argparse.ArgumentParser) -> None:
    """What build and profile share: the build context, the engine and the registry."""
    gap = parser.add_mutually_exclusive_group()
    gap.add_argument(
        "--air-gapped",
        dest="air_gapped",
        action="store_true",
        default=None,
        help="force air-gapped mode (no registry: local base image, no # syntax line)",
    )
    gap.add_argument("--online", dest="air_gapped", action="store_false", help="force pulling from registries")
    parser.add_argument("--builder", help="buildx builder to use (e.g. a remote BuildKit)")


def _add_build_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = sub.add_parser("build", help="build the patched builder stage for real and check the image")
    _upstream_options(build)
    build.add_argument("--ref", required=True, help="the upstream ref whose patched Dockerfile is built")
    build.add_argument(
        "--source",
        default="standin",
        help="build context: standin (the test double, default), full (a full checkout of the ref) "
        "or a path to a source tree",
    )
    build.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="K=V",
        help="override a build arg (default: CARGO_BUILD_JOBS=1, LTO off, x86_64 only)",
    )
    build.add_argument("--report-dir", type=Path, help="where report.json, build.log and sampler.json go")
    _build_options(build)
    build.add_argument("--patch", type=Path, help="force this patch")
    _common(build)


def _add_profile_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    profile = sub.add_parser(
        "profile", help="build one ref once per knob profile and report memory and time of each, plotted"
    )
    _upstream_options(profile)
    profile.add_argument("--ref", help="upstream ref (default: the newest pin, with its patch variant)")
    profile.add_argument(
        "--profile",
        action="append",
        dest="profiles",
        metavar="NAME",
        help="profile to build, repeatable, in this order (default: low-ram, ci, upstream); "
        "built in: low-ram, ci, upstream; more under [profiles.NAME] in the pins file",
    )
    profile.add_argument("--source", default="standin", help="standin (default), full, or a source tree's path")
    profile.add_argument(
        "--build-arg", action="append", default=[], metavar="K=V", help="a build arg added to every profile"
    )
    profile.add_argument("--interval", type=float, default=0.5, help="seconds between samples (default 0.5)")
    profile.add_argument("--report-dir", type=Path, help="where profile.json/.md and memory.png/.svg go")
    profile.add_argument(
        "--keep-images", action="store_true", help="keep each profile's builder image and its target cache mount"
    )
    profile.add_argument(
        "--from-report",
        type=Path,
        metavar="PROFILE_JSON",
        help="build nothing: render the table, Markdown and plot again from a profile.json",
    )
    profile.add_argument(
        "--dry-run", action="store_true", help="build nothing: print the resolved profiles and their build args"
    )
    profile.add_argument("--json", action="store_true", help="with --dry-run: print JSON")
    _build_options(profile)
    _common(profile)


def _add_refresh_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    refresh = sub.add_parser(
        "refresh",
        help="rebase a patch onto another upstream ref with git's three-way merge",
        description=REFRESH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _upstream_options(refresh)
    refresh.add_argument("--patch", type=Path, required=True, help="the patch to refresh (never written)")
    refresh.add_argument("--ref", required=True, help="the upstream tag, branch or commit to move it onto")
    refresh.add_argument("--output", type=Path, required=True, help="where the refreshed patch goes")
    refresh.add_argument("--force", action="store_true", help="replace --output (or --conflicts) if it exists")
    refresh.add_argument("--json", action="store_true", help="print JSON instead of tables")
    refresh.add_argument(
        "--conflicts",
        type=Path,
        metavar="FILE",
        help="when a hunk needs a human: write REF's Dockerfile merged as far as it goes, "
        "with zdiff3 conflict markers, to FILE",
    )
    refresh.add_argument(
        "--resolved",
        type=Path,
        metavar="FILE",
        help="make the patch from FILE, REF's Dockerfile as you resolved it (e.g. a --conflicts file)",
    )
    refresh.add_argument(
        "--take-patch-side",
        action="store_true",
        help="when a hunk needs a human: write a candidate to --output anyway, taking the patch's side in every "
        "region that did not merge, and run the static checks on it (exit 1: review those regions)",
    )
    refresh.add_argument("--date", type=date.fromisoformat, help="the Last-Update: date, YYYY-MM-DD (default: today)")
    _common(refresh)


def _settings(args: argparse.Namespace) -> Settings:
    return resolve_settings(
        upstream=getattr(args, "upstream", None),
        cache_dir=getattr(args, "cache_dir", None),
        pins_file=args.pins,
        env=os.environ,
    )


def _superproject(args: argparse.Namespace, *, discover: bool) -> SuperprojectConfig | None:
    flags = SuperprojectFlags(
        superproject=args.superproject,
        submodule=args.submodule,
        patch=args.patch,
        upstream=getattr(args, "upstream", None),
        pins=args.pins,
    )
    return resolve_superproject(flags, cwd=Path.cwd(), discover=discover)


def _superproject_settings(args: argparse.Namespace, config: SuperprojectConfig) -> Settings:
    # MAS_UPSTREAM is not consulted: the recorded commit lives in the submodule's repository.
    return resolve_settings(
        upstream=config.upstream, cache_dir=getattr(args, "cache_dir", None), pins_file=config.pins, env=os.environ
    )


def _default_patch_for(tree: Path, pins: Pins) -> Path:
    """The patch the pins name for this checkout's Dockerfile (working copy or commit)."""
    blobs = []
    if (tree / DOCKERFILE).is_file():
        blobs.append(git_blob_id((tree / DOCKERFILE).read_bytes()))
    committed = committed_files(tree, [DOCKERFILE]) or {}
    if committed.get(DOCKERFILE) is not None:
        blobs.append(git_blob_id(committed[DOCKERFILE] or b""))
    for blob in blobs:
        matches = pins.by_dockerfile_blob(blob)
        if matches:
            return pins.patch_path(matches[0].patch)
    return pins.patch_path(pins.default_patch)


def _print_report(report: PatchReport, console: Console) -> None:
    console.print(f"state: [bold]{report.state}[/bold] ({report.reason})", highlight=False)
    for hunk in report.hunks:
        console.print(f"  {hunk.describe()}", highlight=False, markup=False, soft_wrap=True)


def _run_tree_command(args: argparse.Namespace, console: Console) -> int:
    if args.checkout is not None and (args.superproject or args.submodule):
        raise BadInput("--checkout names the tree itself; it does not go with --superproject or --submodule")
    config = None if args.checkout is not None else _superproject(args, discover=True)
    if config is not None:
        tree, submodule = work_tree_for(config, require_recorded=args.command == "apply")
        if not submodule.at_recorded_commit:
            log.warning("%s is checked out at %s, not at the recorded commit", submodule.path, submodule.checked_out)
        settings = _superproject_settings(args, config)
        patch = Patch.load(config.patch)
    else:
        tree = args.checkout or Path()
        if not tree.is_dir():
            raise BadInput(f"checkout {tree} is not a directory")
        settings = _settings(args)
        patch = Patch.load(args.patch or _default_patch_for(tree, settings.pins))
    missing = [name for name in patch.files if not (tree / name).is_file()]
    if missing:
        raise BadInput(f"checkout {tree} has no {', '.join(missing)}: is it an upstream MAS checkout?")
    console.print(f"patch: {patch.path}", highlight=False)
    if args.command == "status":
        report = status(tree, patch)
        _print_report(report, console)
        return 0 if report.state in ("applies", "applied") else 1
    result: ApplyResult = apply(tree, patch) if args.command == "apply" else revert(tree, patch)
    console.print(result.message, highlight=False)
    return 0


def _run_superproject_check(
    args: argparse.Namespace, console: Console, config: SuperprojectConfig, *, static: bool
) -> int:
    settings = _superproject_settings(args, config)
    bump_to = getattr(args, "bump_to", None)
    if bump_to is not None:
        check = check_bump(config, bump_to, pins=settings.pins, cache_dir=settings.cache_dir)
    else:
        check = verify(config, pins=settings.pins, cache_dir=settings.cache_dir, static=static)
    if args.output:
        args.output.write_text(superproject_json(check) + "\n")
    if args.json:
        sys.stdout.write(superproject_json(check) + "\n")
    else:
        print_superproject_check(check, console)
    return 0 if check.ok else 1


def _run_verify(args: argparse.Namespace, console: Console) -> int:
    config = _superproject(args, discover=True)
    if config is None:
        raise BadInput(
            f"no superproject: no pyproject.toml with a [tool.mas-harness] table in {Path.cwd()} or above; "
            "pass --superproject DIR (the harness's own pins are verified by `nox -s verify`)"
        )
    return _run_superproject_check(args, console, config, static=True)


def _compat_refs(args: argparse.Namespace, settings: Settings, cache: UpstreamCache) -> list[str]:
    """--ref and positional refs in order, then --latest; every pin when none is given."""
    refs: list[str] = [*(args.refs or []), *args.ref_args]
    if args.latest:
        latest = latest_release_tag(cache)
        log.info("--latest: %s is the newest release tag of %s", latest, settings.upstream)
        refs.append(latest)
    return refs or [pin.tag for pin in settings.pins.pins]


def _run_compat(args: argparse.Namespace, console: Console) -> int:
    config = _superproject(args, discover=args.bump_to is not None)
    if config is None and args.bump_to is not None:
        raise BadInput(
            f"--bump-to needs a superproject: no pyproject.toml with a [tool.mas-harness] table in {Path.cwd()} "
            "or above; pass --superproject DIR"
        )
    if config is not None:
        if args.refs:
            raise BadInput("in a superproject, name the ref to check with --bump-to REF, not --ref")
        # Without --bump-to, the recorded commit: verify without the static checks.
        return _run_superproject_check(args, console, config, static=False)
    settings = _settings(args)
    cache = UpstreamCache(settings.cache_dir, UpstreamSource.parse(settings.upstream))
    refs = _compat_refs(args, settings, cache)
    forced = None
    if args.patch is not None:
        forced = args.patch
        Patch.load(forced)  # bad input is reported before any fetch
    results = check_refs(cache, refs, pins=settings.pins, forced_patch=forced)
    data = compat_json(results)
    if args.output:
        args.output.write_text(data + "\n")
    _publish(args, "compat", compat_cases(json.loads(data)))
    if args.json:
        sys.stdout.write(data + "\n")
    else:
        print_compat(results, console)
    return 0 if all(result.ok for result in results) else 1


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{what} {path} cannot be read: {exc}") from None


def _run_check(args: argparse.Namespace, console: Console) -> int:
    if args.dockerfile is not None:
        pristine = _read_text(args.pristine, "pristine Dockerfile") if args.pristine else None
        findings = check_patched(
            _read_text(args.dockerfile, "Dockerfile"), pristine=pristine, name=str(args.dockerfile)
        )
        results = [StaticResult(ref=str(args.dockerfile), patch="", findings=tuple(findings))]
    else:
        settings = _settings(args)
        cache = UpstreamCache(settings.cache_dir, UpstreamSource.parse(settings.upstream))
        refs = args.refs or [pin.tag for pin in settings.pins.pins if pin.expected == "applies"]
        results = [static_check_ref(cache, ref, pins=settings.pins, forced_patch=args.patch) for ref in refs]
    data = static_json(results)
    if args.output:
        args.output.write_text(data + "\n")
    _publish(args, "static checks", static_cases(json.loads(data)))
    if args.json:
        sys.stdout.write(data + "\n")
    else:
        console.print(findings_table(results))
    return 0 if all(result.ok for result in results) else 1


def _parse_build_args(pairs: Sequence[str], *, defaults: Mapping[str, str] = CI_BUILD_ARGS) -> dict[str, str]:
    args = dict(defaults)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise BadInput(f"--build-arg {pair!r} is not KEY=VALUE")
        args[key] = value
    return args


@dataclass(frozen=True, kw_only=True)
class _BuildInputs:
    patched: bytes
    context: Path
    work_dir: Path
    air_gapped: bool
    release: ReleaseProfile


def _build_inputs(
    args: argparse.Namespace, settings: Settings, ref: str, *, forced_patch: Path | None, dry_run: bool = False
) -> _BuildInputs:
    """What build and profile both need: an engine, the ref's patched Dockerfile, the context, the registry mode."""
    if not dry_run:
        engine = check_engine()
        log.info("engine %s, buildx %s", engine.server_version, engine.buildx_version)
    cache = UpstreamCache(settings.cache_dir, UpstreamSource.parse(settings.upstream))
    patched_ref = patch_ref(cache, ref, pins=settings.pins, forced_patch=forced_patch)
    if patched_ref.patched is None:
        report = patched_ref.report
        raise CheckFailed(f"{patched_ref.patch_path.name} does not apply to {ref}: {report.state}: {report.reason}")
    work = settings.cache_dir / "work"
    cargo_blob = patched_ref.resolved.cargo_toml_blob
    release = parse_release_profile(
        cache.read_blob(cargo_blob).decode() if cargo_blob else None, where=f"{ref}:{CARGO_TOML}"
    )
    return _BuildInputs(
        release=release,
        patched=patched_ref.patched,
        context=resources.standin_tree()
        if dry_run
        else build_context(
            args.source, cache=cache, resolved=patched_ref.resolved, work_dir=work, standin=resources.standin_tree()
        ),
        work_dir=work,
        air_gapped=args.air_gapped if args.air_gapped is not None else not registry_reachable(),
    )


def _run_build(args: argparse.Namespace, console: Console) -> int:
    build_args = _parse_build_args(args.build_arg)
    settings = _settings(args)
    inputs = _build_inputs(args, settings, args.ref, forced_patch=args.patch)
    report_dir: Path = args.report_dir or Path("reports") / f"build-{args.ref}"
    plan = plan_build(
        ref=args.ref,
        patched_dockerfile=inputs.patched,
        context=inputs.context,
        source=args.source,
        build_args=build_args,
        air_gapped=inputs.air_gapped,
        work_dir=inputs.work_dir,
        builder=args.builder,
    )
    result = build_and_check(plan, report_dir=report_dir, standin=args.source == "standin", console=console)
    table = Table(title=f"build {args.ref} ({args.source})")
    for column in ("check", "verdict", "detail"):
        table.add_column(column, overflow="fold")
    for check in result.checks:
        table.add_row(check.name, "[green]ok[/green]" if check.ok else "[red]FAIL[/red]", check.detail)
    console.print(table)
    console.print(f"report: {report_dir / 'report.json'}", highlight=False)
    return 0 if result.ok else 1


def _run_summary(args: argparse.Namespace, console: Console) -> int:
    if args.pytest or args.refs or args.profiles:
        rows = summary_rows(
            args.reports,
            pytest_files=args.pytest or [],
            ref_reports=args.refs or [],
            profile_reports=args.profiles or [],
        )
    else:
        rows = summary_rows(args.reports)
    ok = bool(rows) and all(row.ok for row in rows)
    console.print(summary_table(rows))
    markdown = summary_markdown(rows)
    if args.markdown:
        args.markdown.write_text(markdown)
    if args.json_output:
        data = {"ok": ok, "parts": [{**vars(row), "ok": row.ok} for row in rows]}
        args.json_output.write_text(json.dumps(data, indent=2) + "\n")
    append_step_summary(markdown, os.environ)
    return 0 if ok else 1


def _run_profile(args: argparse.Namespace, console: Console) -> int:
    if args.from_report:
        report = load_profile_report(args.from_report)
        out_dir = args.report_dir or args.from_report.parent
        written = [*write_profile_outputs(report, out_dir), publish_profile(report, out_dir)]
        console.print(profile_table(report))
        for path in written:
            console.print(f"wrote {path}", highlight=False)
        return 0 if report.ok else 1
    settings = _settings(args)
    names = args.profiles or ["low-ram", "ci", BASELINE]
    select_profiles({**builtin_profiles(), BASELINE: None, **settings.pins.profiles}, names)  # type: ignore[dict-item]
    if args.interval <= 0:
        raise BadInput("--interval must be a positive number of seconds")
    extra_args = _parse_build_args(args.build_arg, defaults={})
    ref = args.ref or newest_applying_pin(settings.pins)
    inputs = _build_inputs(args, settings, ref, forced_patch=None, dry_run=args.dry_run)
    available = {
        **builtin_profiles(),
        BASELINE: upstream_profile(inputs.release, ref=ref),
        **settings.pins.profiles,
    }
    profiles = select_profiles(available, names)
    if args.dry_run:
        plan: list[dict[str, Any]] = [
            {
                "name": p.name,
                "description": p.description,
                "build_args": {**extra_args, **p.build_args},
                "sources": dict(p.sources),
            }
            for p in profiles
        ]
        document = {"ref": ref, "upstream_release_profile": inputs.release.as_json(), "profiles": plan}
        if args.json:
            sys.stdout.write(json.dumps(document, indent=2) + "\n")
        else:
            console.print(f"{ref}: upstream's release profile: {inputs.release.describe()}", markup=False)
            for entry in plan:
                args_text = " ".join(f"{k}={v}" for k, v in entry["build_args"].items()) or "(patch defaults)"
                console.print(f"{entry['name']}: {args_text}", markup=False, soft_wrap=True)
                for key, source in entry["sources"].items():
                    console.print(f"  {key}: {source}", markup=False, soft_wrap=True)
        return 0
    report_dir: Path = args.report_dir or Path("reports") / f"profile-{ref}"
    report = run_profiles(
        ref=ref,
        patched_dockerfile=inputs.patched,
        context=inputs.context,
        source=args.source,
        profiles=profiles,
        base_build_args=extra_args,
        air_gapped=inputs.air_gapped,
        work_dir=inputs.work_dir,
        report_dir=report_dir,
        standin=args.source == "standin",
        interval=args.interval,
        builder=args.builder,
        keep_images=args.keep_images,
        console=console,
    )
    written = write_profile_outputs(report, report_dir)
    written.append(publish_profile(report, report_dir))
    console.print(profile_table(report))
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    return 0 if report.ok else 1


REFRESH_HELP = """\
Rebase a patch onto another upstream ref with git's three-way merge.

The patch's `index` line names its pre-image blob: that is the merge base, REF's
Dockerfile is one side, the pre-image with the patch applied the other. The blob
is read from the upstream cache, else from the pinned tag whose Dockerfile it is.
Context lines need not match, so hunks survive upstream edits next to them.

Every hunk of the input is reported: merged cleanly (and at which line of REF's
Dockerfile), already upstream, or needs a human (each conflicting region, with
REF's lines, the pre-image's and the patch's). The --patch file is never written.

  clean     the refreshed patch is written to --output: the DEP-3 header kept,
            Last-Update: bumped, the diff regenerated against REF's Dockerfile
            (full-index ids); then the static checks run on the patched file.
            Exit 0, or 1 if a static check fails (the patch is written: review it).
  conflict  nothing is written, exit 1. With --conflicts FILE, REF's Dockerfile
            merged as far as it goes, with conflict markers, is written to FILE:
            resolve it, then run again with --resolved FILE to get the patch
            (the static checks then run on your resolution). With
            --take-patch-side, a candidate is written to --output anyway, the
            patch's side taken in every region that did not merge, the static
            checks run on it, and the exit is 1: review those regions.
  upstream  REF already has every change: nothing is written, exit 1.

--output (and --conflicts) must not exist unless --force is given: exit 2,
nothing touched. Exit 2 too for a bad patch, an unknown ref or a pre-image blob
that cannot be found; 3 when a tool is missing.
"""


def _run_refresh(args: argparse.Namespace, console: Console) -> int:
    inputs = [args.patch, *([args.resolved] if args.resolved else [])]
    refuse_clobber(args.output, force=args.force, protected=inputs)
    if args.conflicts is not None:
        refuse_clobber(args.conflicts, force=args.force, protected=[*inputs, args.output])
    if args.take_patch_side and args.resolved:
        raise BadInput("--take-patch-side and --resolved are two ways to settle conflicts: give one")
    settings = _settings(args)
    patch = Patch.load(args.patch)
    resolution = _read_bytes(args.resolved, "resolved Dockerfile") if args.resolved else None
    cache = UpstreamCache(settings.cache_dir, UpstreamSource.parse(settings.upstream))
    resolved = cache.resolve(args.ref)
    verify_pin(resolved, settings.pins.get(args.ref))
    result = refresh_onto(
        cache,
        patch,
        resolved,
        pins=settings.pins,
        today=args.date or date.today(),
        resolution=resolution,
        take_patch_side=args.take_patch_side,
    )
    findings = None
    written: dict[str, str | None] = {"output": None, "conflicts_file": None}
    if result.candidate is not None:
        [refreshed] = result.files
        assert refreshed.result is not None
        findings = check_patched(
            refreshed.result.decode(), pristine=refreshed.target.decode(), name=f"{args.ref}:{DOCKERFILE} (refreshed)"
        )
        atomic_write(args.output, result.candidate, mode=0o644, replace=args.force)
        written["output"] = str(args.output)
    elif result.status == "conflict" and args.conflicts is not None:
        atomic_write(args.conflicts, b"".join(f.merged for f in result.files), mode=0o644, replace=args.force)
        written["conflicts_file"] = str(args.conflicts)
    if args.json:
        sys.stdout.write(refresh_json(result, findings=findings, written=written) + "\n")
    else:
        lines = [f"wrote {written['output']}"] if written["output"] else []
        if written["conflicts_file"]:
            lines.append(f"wrote {written['conflicts_file']}: resolve it, then refresh again with --resolved")
        print_refresh(result, console, findings=findings, written=lines)
    if result.candidate is None:
        raise CheckFailed(result.summary() + ("" if written["conflicts_file"] else "; nothing written"))
    failed = [finding.check for finding in findings or () if not finding.ok]
    if result.status == "patch-side":
        verdict = f"static checks fail on it: {', '.join(dict.fromkeys(failed))}" if failed else "static checks pass"
        raise CheckFailed(f"{result.summary()}; wrote {args.output} ({verdict})")
    if failed:
        raise CheckFailed(
            f"wrote {args.output}, but static checks fail on it: {', '.join(dict.fromkeys(failed))}: review it"
        )
    return 0


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{what} {path} cannot be read: {exc.strerror}") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A pipe or CI log has no width of its own; rich would wrap the table at 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_time=False, show_path=False)],
    )
    try:
        if args.command in ("status", "apply", "revert"):
            return _run_tree_command(args, console)
        if args.command == "summary":
            return _run_summary(args, console)
        if args.command == "build":
            return _run_build(args, console)
        if args.command == "profile":
            return _run_profile(args, console)
        if args.command == "check":
            return _run_check(args, console)
        if args.command == "verify":
            return _run_verify(args, console)
        if args.command == "refresh":
            return _run_refresh(args, console)
        return _run_compat(args, console)
    except HarnessError as exc:
        print(f"mas-harness: error: {exc}", file=sys.stderr)
        return exc.return_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
