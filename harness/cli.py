"""The command line: parse, call one function of a lower layer, map errors to exit codes.

Exit codes: 0 all as expected, 1 a check failed, 2 bad input, 3 the machine lacks
something the harness needs.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from harness.build import CI_BUILD_ARGS, build_and_check, check_engine, plan_build, registry_reachable
from harness.compat import StaticResult, check_refs, latest_release_tag, patch_ref, static_check_ref
from harness.config import PROJECT_ROOT, Pins, Settings, resolve_settings
from harness.errors import BadInput, CheckFailed, HarnessError
from harness.patching import (
    ApplyResult,
    Patch,
    PatchReport,
    apply,
    committed_files,
    git_blob_id,
    revert,
    status,
)
from harness.report import compat_json, findings_table, print_compat, static_json, verify_summary
from harness.static import check_patched
from harness.upstream import DOCKERFILE, UpstreamCache, UpstreamSource

log = logging.getLogger("harness")

# A test double shaped like MAS (see its README), the default build context.
STANDIN_TREE = PROJECT_ROOT / "tests" / "fixtures" / "standin"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pins", type=Path, help="pins file (default: pins.toml of the project, or $MAS_HARNESS_PINS)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command run")


def _upstream_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--upstream", help="git URL, local repository or bundle (default: $MAS_UPSTREAM, then the pins)"
    )
    parser.add_argument("--cache-dir", type=Path, help="checkout cache (default: $MAS_HARNESS_CACHE or XDG cache)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mas-harness", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    for name, summary in (
        ("status", "report whether the patch applies, is applied, upstreamed or conflicts"),
        ("apply", "apply the patch once (a second apply is a no-op); atomic"),
        ("revert", "undo an apply"),
    ):
        cmd = sub.add_parser(name, help=summary, description=summary)
        cmd.add_argument("--checkout", type=Path, default=Path(), help="upstream checkout (default: .)")
        cmd.add_argument("--patch", type=Path, help="patch file (default: the one the pins name for this Dockerfile)")
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
    _common(compat)

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
    _common(check)

    summarize = sub.add_parser("summary", help="one table from the reports a verify run wrote")
    summarize.add_argument("--reports", type=Path, default=Path("reports"), help="verify.xml, static.json, compat.json")
    _common(summarize)

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
    gap = build.add_mutually_exclusive_group()
    gap.add_argument(
        "--air-gapped",
        dest="air_gapped",
        action="store_true",
        default=None,
        help="force air-gapped mode (no registry: local base image, no # syntax line)",
    )
    gap.add_argument("--online", dest="air_gapped", action="store_false", help="force pulling from registries")
    build.add_argument("--builder", help="buildx builder to use (e.g. a remote BuildKit)")
    build.add_argument("--patch", type=Path, help="force this patch")
    _common(build)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return resolve_settings(
        upstream=getattr(args, "upstream", None),
        cache_dir=getattr(args, "cache_dir", None),
        pins_file=args.pins,
        env=os.environ,
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
    tree: Path = args.checkout
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


def _compat_refs(args: argparse.Namespace, settings: Settings, cache: UpstreamCache) -> list[str]:
    """--ref and positional refs in order, then --latest; every pin when none is given."""
    refs: list[str] = [*(args.refs or []), *args.ref_args]
    if args.latest:
        latest = latest_release_tag(cache)
        log.info("--latest: %s is the newest release tag of %s", latest, settings.upstream)
        refs.append(latest)
    return refs or [pin.tag for pin in settings.pins.pins]


def _run_compat(args: argparse.Namespace, console: Console) -> int:
    settings = _settings(args)
    cache = UpstreamCache(settings.cache_dir, UpstreamSource.parse(settings.upstream))
    refs = _compat_refs(args, settings, cache)
    forced = None
    if args.patch is not None:
        forced = args.patch
        Patch.load(forced)  # bad input is reported before any fetch
    results = check_refs(cache, refs, pins=settings.pins, forced_patch=forced)
    if args.output:
        args.output.write_text(compat_json(results) + "\n")
    if args.json:
        sys.stdout.write(compat_json(results) + "\n")
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
    if args.output:
        args.output.write_text(static_json(results) + "\n")
    if args.json:
        sys.stdout.write(static_json(results) + "\n")
    else:
        console.print(findings_table(results))
    return 0 if all(result.ok for result in results) else 1


def _parse_build_args(pairs: Sequence[str]) -> dict[str, str]:
    args = dict(CI_BUILD_ARGS)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise BadInput(f"--build-arg {pair!r} is not KEY=VALUE")
        args[key] = value
    return args


def _run_build(args: argparse.Namespace, console: Console) -> int:
    build_args = _parse_build_args(args.build_arg)
    settings = _settings(args)
    engine = check_engine()
    log.info("engine %s, buildx %s", engine.server_version, engine.buildx_version)
    cache = UpstreamCache(settings.cache_dir, UpstreamSource.parse(settings.upstream))
    patched_ref = patch_ref(cache, args.ref, pins=settings.pins, forced_patch=args.patch)
    if patched_ref.patched is None:
        report = patched_ref.report
        raise CheckFailed(
            f"{patched_ref.patch_path.name} does not apply to {args.ref}: {report.state}: {report.reason}"
        )
    patched, resolved = patched_ref.patched, patched_ref.resolved
    report_dir: Path = args.report_dir or Path("reports") / f"build-{args.ref}"
    work = settings.cache_dir / "work"
    if args.source == "standin":
        context = STANDIN_TREE
    elif args.source == "full":
        context = work / f"full-{resolved.commit[:12]}"
        if not (context / DOCKERFILE).is_file():
            cache.checkout(resolved, context)
    else:
        context = Path(args.source)
        if not context.is_dir():
            raise BadInput(f"--source {args.source}: not standin, full, or a directory")
    air_gapped = args.air_gapped if args.air_gapped is not None else not registry_reachable()
    plan = plan_build(
        ref=args.ref,
        patched_dockerfile=patched,
        context=context,
        source=args.source,
        build_args=build_args,
        air_gapped=air_gapped,
        work_dir=work,
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
            table, ok = verify_summary(args.reports)
            console.print(table)
            return 0 if ok else 1
        if args.command == "build":
            return _run_build(args, console)
        if args.command == "check":
            return _run_check(args, console)
        return _run_compat(args, console)
    except HarnessError as exc:
        print(f"mas-harness: error: {exc}", file=sys.stderr)
        return exc.return_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
