"""mas-harness: parse the command line, resolve the configuration, run one command, report, exit.

Each command is a function in harness.cli.commands that returns an Outcome; this module
resolves, once, what the command uses (the run record of harness.config.run and the command's
request of harness.config.requests, nothing more) and hands them to it whole, sends the Outcome
through harness.report.publish and turns it into the exit code, and is the one place an error
becomes an exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from harness import __version__
from harness.cli.commands import BUILD_EXTRA
from harness.cli.parser import build_parser
from harness.cli.report_paths import check_report_paths
from harness.config.requests import (
    DEFAULT_STAGE,
    AdviseRequest,
    BuildRequest,
    BuildSpec,
    BuildStage,
    BumpRequest,
    CheckRequest,
    CompatRequest,
    ExportRequest,
    ProfileRequest,
    RefreshRequest,
    TreeRequest,
)
from harness.config.run import Run, RunFlags, default_journal_dir, resolve_pins, resolve_run
from harness.config.superproject import SuperprojectConfig, SuperprojectFlags, resolve_superproject
from harness.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, BadInput, CheckFailed, EnvironmentProblem, HarnessError
from harness.report.publish import Sinks, publish
from harness.results import Outcome, exit_code

log = logging.getLogger("harness")


def _run_flags(args: argparse.Namespace) -> RunFlags:
    """The `upstream` options, which every command that reads upstream has (the parser fills in those it lacks)."""
    return RunFlags(
        upstream=args.upstream,
        cache_dir=args.cache_dir,
        pins_file=args.pins,
        offline=args.offline,
        no_cache=args.no_cache,
        unconfined=args.unconfined,
    )


def _run(args: argparse.Namespace, config: SuperprojectConfig | None = None) -> Run:
    """Flags over the environment over the pins file; in a superproject, its table's upstream and pins."""
    return resolve_run(_run_flags(args), env=os.environ, superproject=config)


def _superproject(args: argparse.Namespace, *, discover: bool) -> SuperprojectConfig | None:
    flags = SuperprojectFlags(
        superproject=args.superproject,
        submodule=args.submodule,
        patch=args.patch,
        upstream=args.upstream,
        pins=args.pins,
    )
    return resolve_superproject(flags, cwd=Path.cwd(), discover=discover)


def _no_superproject(command: str) -> BadInput:
    return BadInput(
        f"{command}: no superproject here: no pyproject.toml with a [tool.mas-harness] table in {Path.cwd()} or "
        "above; add one, or pass --superproject DIR (or --submodule PATH and --patch FILE)"
    )


def _tree_command(args: argparse.Namespace, console: Console) -> Outcome:
    from harness.cli.commands.checkout import on_tree  # noqa: PLC0415  # each command imports only what it uses

    if args.checkout is not None and (args.superproject or args.submodule):
        raise BadInput("--checkout names the tree itself; it does not go with --superproject or --submodule")
    config = None if args.checkout is not None else _superproject(args, discover=True)
    # The pins alone: nothing is fetched, so no cache directory is resolved (or required to be usable).
    request = TreeRequest(
        command=args.command,
        checkout=args.checkout,
        patch=args.patch,
        superproject=config,
        pins=resolve_pins(args.pins, env=os.environ, superproject=config),
        journals=default_journal_dir(os.environ),
    )
    return on_tree(request)


def _refresh(args: argparse.Namespace, console: Console) -> Outcome:
    from harness.cli.commands.refresh import refresh  # noqa: PLC0415

    config = _superproject(args, discover=args.upstream is None)
    if config is None and args.patch is None:
        raise BadInput("refresh: name the patch to refresh with --patch FILE (or run it in a superproject)")
    request = RefreshRequest(
        ref=args.ref,
        patches=(args.patch,) if args.patch is not None else config.patches if config is not None else (),
        output=args.output,
        today=args.date or date.today(),
        force=args.force,
        conflicts=args.conflicts,
        resolved=args.resolved,
        take_patch_side=args.take_patch_side,
        shown_from=config.root if config is not None else Path.cwd(),
        pre=args.pre,
    )
    return refresh(_run(args, config), request)


def _export(args: argparse.Namespace, console: Console) -> Outcome:
    from harness.cli.commands.patch import export  # noqa: PLC0415

    config = _superproject(args, discover=args.upstream is None) if args.superproject or not args.upstream else None
    request = ExportRequest(ref=args.ref, output=args.output, force=args.force, pre=args.pre)
    return export(_run(args, config), request)


def _build_spec(args: argparse.Namespace, *, stage: BuildStage = DEFAULT_STAGE, patch: Path | None = None) -> BuildSpec:
    return BuildSpec(
        source=args.source,
        build_args=tuple(args.build_arg),
        stage=stage,
        forced_patch=patch,
        air_gapped=args.air_gapped,
        builder=args.builder,
        load=args.load,
        export=args.export,
    )


def _profile_request(args: argparse.Namespace) -> ProfileRequest:
    return ProfileRequest(
        ref=args.ref,
        names=tuple(args.profiles),
        spec=_build_spec(args),
        interval=args.interval,
        report_dir=args.report_dir,
        keep_images=args.keep_images,
    )


def _builds(args: argparse.Namespace, console: Console) -> Outcome:
    if args.command == "profile" and args.dry_run:
        from harness.cli.commands.profile_plan import profile_plan  # noqa: PLC0415

        return profile_plan(_run(args), _profile_request(args))
    try:
        from harness.cli.commands.build import build  # noqa: PLC0415  # the Docker stack loads only here
        from harness.cli.commands.profile import profile, profile_from_report  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        raise EnvironmentProblem(f"`{args.command}` needs {exc.name}, from the build extra: {BUILD_EXTRA}") from None
    # The build's progress goes to stderr, where a terminal shows a bar and a log gets a line now and then.
    progress = Console(stderr=True)
    if args.command == "build":
        request = BuildRequest(
            ref=args.ref,
            spec=_build_spec(args, stage=args.stage, patch=args.patch),
            report_dir=args.report_dir,
            trace=args.trace,
        )
        return build(_run(args), request, progress=progress)
    if args.from_report is not None:
        return profile_from_report(report_file=args.from_report, report_dir=args.report_dir)
    return profile(_run(args), _profile_request(args), progress=progress)


def _advise(args: argparse.Namespace, console: Console) -> Outcome:
    from harness.cli.commands.advise import advise  # noqa: PLC0415

    request = AdviseRequest(
        memory=args.memory,
        cpus=args.cpus,
        ref=args.ref,
        traces=tuple(args.traces),
        margin_percent=args.margin,
        plot=args.plot,
    )
    return advise(request)


def _verify(args: argparse.Namespace, console: Console) -> Outcome:
    from harness.cli.commands.verify import verify  # noqa: PLC0415

    config = _superproject(args, discover=True)
    if config is None:
        raise _no_superproject("verify")
    return verify(_run(args, config))


def _compat(args: argparse.Namespace, console: Console) -> Outcome:
    from harness.cli.commands.compat import asks_latest, compat, superproject_bump_ref  # noqa: PLC0415

    refs = [*args.refs, *args.ref_args]
    # `latest` is upstream's newest release: in a superproject, that of the submodule's upstream.
    latest = args.upstream is None and asks_latest(refs=refs, latest=args.latest)
    config = _superproject(args, discover=args.bump_to is not None or latest)
    if config is None and args.bump_to is not None:
        raise _no_superproject("compat --bump-to")
    if config is not None:
        bump_to = superproject_bump_ref(bump_to=args.bump_to, refs=refs, latest=args.latest)
        return compat(_run(args, config), CompatRequest(bump_to=bump_to, pre=args.pre))
    request = CompatRequest(refs=tuple(refs), latest=args.latest, forced_patch=args.patch, pre=args.pre)
    return compat(_run(args), request)


def _bump(args: argparse.Namespace, console: Console) -> Outcome:
    from harness.cli.commands.bump import bump  # noqa: PLC0415

    config = _superproject(args, discover=True)
    if config is None:
        raise _no_superproject("bump")
    if args.dry_run and args.commit:
        raise BadInput("--dry-run writes nothing and --commit commits: drop one")
    request = BumpRequest(
        ref=args.ref,
        take=args.take,
        pre=args.pre,
        dry_run=args.dry_run,
        message_file=args.message_file,
        commit=args.commit,
    )
    return bump(_run(args, config), request)


def _check(args: argparse.Namespace, console: Console) -> Outcome:
    from harness.cli.commands.check import check  # noqa: PLC0415

    if args.dockerfile is None and args.pristine is not None:
        raise BadInput("--pristine goes with --dockerfile")
    request = CheckRequest(
        refs=tuple(args.refs), forced_patch=args.patch, dockerfile=args.dockerfile, pristine=args.pristine
    )
    return check(_run(args), request)


def _summary(args: argparse.Namespace, console: Console) -> Outcome:
    from harness.cli.commands.summary import summary  # noqa: PLC0415

    return summary(reports=args.reports, pytest_files=args.pytest, json_reports=args.refs, profiles=args.profiles)


def _install_engine(args: argparse.Namespace, console: Console) -> Outcome:
    from harness.cli.commands.install_engine import install_engine  # noqa: PLC0415

    return install_engine(print_only=args.print)


COMMANDS: dict[str, Callable[[argparse.Namespace, Console], Outcome]] = {
    "verify": _verify,
    "compat": _compat,
    "status": _tree_command,
    "apply": _tree_command,
    "revert": _tree_command,
    "check": _check,
    "refresh": _refresh,
    "patch": _export,
    "bump": _bump,
    "build": _builds,
    "profile": _builds,
    "advise": _advise,
    "summary": _summary,
    "install-engine": _install_engine,
}
"""Each command's dispatcher: it reads the command's own options by name, resolves what the command uses and calls it
with the run record and its request."""


def _sinks(args: argparse.Namespace) -> Sinks:
    if args.command == "install-engine":
        return Sinks()
    return Sinks.from_environment(
        os.environ,
        json_stdout=args.json,
        output=args.report_output,
        junit=args.junit,
        markdown=args.markdown,
        annotations=args.github_annotations,
    )


# Commands that run for minutes say what they are doing; the others speak only when something is wrong.
_CHATTY = ("build", "profile", "install-engine")


def _configure_logging(args: argparse.Namespace) -> None:
    if args.verbose:
        level = logging.DEBUG
    elif args.quiet:
        level = logging.ERROR
    else:
        level = logging.INFO if args.command in _CHATTY else logging.WARNING
    log.setLevel(level)
    log.handlers = [RichHandler(console=Console(stderr=True), show_time=False, show_path=False, markup=False)]
    log.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has already explained
        return exc.code if isinstance(exc.code, int) else 2
    args.quiet = args.quiet and not args.verbose
    _configure_logging(args)
    console = Console(highlight=False)
    outcome: Outcome | None = None
    try:
        sinks = _sinks(args)
        sinks = check_report_paths(args, sinks)
        try:
            outcome = COMMANDS[args.command](args, console)
        except CheckFailed as failed:
            # A check that stopped its command is still a result: the reports carry it as they carry every other,
            # and the error line below says it on the terminal.
            from harness.report.views import stopped_outcome  # noqa: PLC0415

            outcome = stopped_outcome(args.command, failed)
            publish(outcome, sinks, console)
            raise
        publish(outcome, sinks, console)
        sys.stdout.flush()  # inside the try: a reader that went away shows up here, not at interpreter exit
    except BrokenPipeError:
        # The reader went away (`mas-harness compat | head -1`): the verdict stands, the rest of the output is moot.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exit_code(outcome.results) if outcome is not None else 0
    except HarnessError as exc:
        # One line, whatever a tool's output quoted in the message held.
        print(f"mas-harness: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.return_code
    except KeyboardInterrupt:
        print("mas-harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the one place an unexpected error becomes an exit code
        print(
            f"mas-harness: internal error: {type(exc).__name__}: {exc}. This is a bug in mas-harness {__version__}: "
            "please report it with the output of the same command run with -v"
            + ("" if args.verbose else " (which shows the traceback)"),
            file=sys.stderr,
        )
        if args.verbose:
            traceback.print_exc()
        return EXIT_INTERNAL
    if not outcome.results:
        print(f"mas-harness: error: {args.command} checked nothing", file=sys.stderr)
    return exit_code(outcome.results)


if __name__ == "__main__":
    raise SystemExit(main())
