"""Every file a run writes for the user, checked once against what the run reads, before any work.

The command line knows both sides: the report paths it was given and the inputs its
command will read (the patch, the pins file and the patches it names, the superproject's
pyproject.toml and .gitmodules, the files named by flags) and the trees it works on (the
checkout, the submodule). This gathers them from the parsed arguments (every attribute read here has a
value in every command: harness.cli.parser sets the defaults), resolving the
superproject and the pins as the command will; where that resolution fails, the command
itself reports why, so the failure is left to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from harness.config.pins import Pins, load_pins
from harness.config.superproject import PYPROJECT, SuperprojectConfig, SuperprojectFlags, resolve_superproject
from harness.errors import HarnessError
from harness.report.destinations import Destination, RunPaths, takes_standard_output
from harness.report.publish import Sinks, check_writable

TREE_COMMANDS = ("status", "apply", "revert")
GITMODULES = ".gitmodules"


def _superproject(args: argparse.Namespace, cwd: Path) -> SuperprojectConfig | None:
    flags = SuperprojectFlags(
        superproject=args.superproject,
        submodule=args.submodule,
        patch=args.patch,
        upstream=args.upstream,
        pins=args.pins,
    )
    try:
        return resolve_superproject(flags, cwd=cwd, discover=True)
    except HarnessError:
        return None


def _pins(args: argparse.Namespace, config: SuperprojectConfig | None, env: Mapping[str, str]) -> Pins | None:
    chosen = (config.pins if config else None) or args.pins
    if chosen is None and env.get("MAS_HARNESS_PINS"):
        chosen = Path(env["MAS_HARNESS_PINS"])
    try:
        return load_pins(chosen)
    except HarnessError:
        return None


def _pins_inputs(pins: Pins) -> Iterator[tuple[str, Path]]:
    yield "the pins file", pins.source
    if pins.series.source is not None:
        yield "the series file", pins.series.source
    for variant in pins.series.variants:
        yield "a patch the pins name", variant.patch
    for pin in pins.pins:
        yield "a patch the pins name", pins.patch_path(pin.patch)


def _inputs(
    args: argparse.Namespace, config: SuperprojectConfig | None, pins: Pins | None
) -> Iterator[tuple[str, Path]]:
    # Flags naming a file the command reads, with how the user named it.
    named = (
        (args.patch, "the patch"),
        (args.resolved, "the --resolved file"),
        (args.dockerfile, "the --dockerfile file"),
        (args.pristine, "the --pristine file"),
        (args.from_report, "the --from-report file"),
        (args.pins, "the pins file"),
    )
    for value, what in named:
        if isinstance(value, Path):
            yield what, value
    for trace in args.traces:
        yield "a --trace file", trace
    if args.upstream and Path(args.upstream).is_file():
        yield "the upstream bundle", Path(args.upstream)
    if args.command == "summary":
        for name in (*args.pytest, *args.refs, *args.profiles):
            yield "a report this summary reads", args.reports / name
    if config is not None:
        if args.command != "patch":
            # `patch` writes the harness's variant and never reads the configured patch: replacing it with
            # --force is what compat --bump-to advises.
            for patch in config.patches:
                yield "the superproject's patch", patch
        if config.series_file is not None:
            yield "the superproject's series file", config.series_file
        yield f"the superproject's {PYPROJECT}", config.root / PYPROJECT
        yield f"the superproject's {GITMODULES}", config.root / GITMODULES
        if config.pins is not None:
            yield "the superproject's pins file", config.pins
    if pins is not None:
        yield from _pins_inputs(pins)


def _trees(args: argparse.Namespace, config: SuperprojectConfig | None, cwd: Path) -> Iterator[tuple[str, Path]]:
    if args.command in TREE_COMMANDS:
        if args.checkout is not None:
            yield "the checkout", args.checkout
        elif config is None:
            yield "the checkout", cwd
    if config is not None:
        yield "the submodule", config.work_tree


def _destinations(args: argparse.Namespace, sinks: Sinks) -> Iterator[Destination]:
    yield from sinks.destinations()
    if args.command in ("patch", "refresh"):
        yield Destination(flag="--output", path=args.output, replace=args.force)
    if args.conflicts is not None:
        yield Destination(flag="--conflicts", path=args.conflicts, replace=args.force)
    if args.plot is not None:
        yield Destination(flag="--plot", path=args.plot, to_standard_output=False)
    if args.message_file is not None:
        # Without it the message goes to standard output already.
        yield Destination(flag="--message-file", path=args.message_file, to_standard_output=False)
    if args.report_dir is not None:
        yield Destination(flag="--report-dir", path=args.report_dir, directory=True)


def run_paths(args: argparse.Namespace, sinks: Sinks, *, env: Mapping[str, str], cwd: Path) -> RunPaths:
    """What the run named by `args` reads, works on and writes."""
    config = _superproject(args, cwd)
    pins = _pins(args, config, env)
    return RunPaths(
        destinations=tuple(_destinations(args, sinks)),
        inputs=tuple(_inputs(args, config, pins)),
        trees=tuple(_trees(args, config, cwd)),
        json_stdout=sinks.json_stdout,
    )


def check_report_paths(args: argparse.Namespace, sinks: Sinks, *, env: Mapping[str, str] = os.environ) -> Sinks:
    """Refuse (exit 2, before any work) a report path that is an input, inside the checkout or submodule or a git
    directory, the same file as another report, or not a file that can be written; the sinks to publish to."""
    if not sinks.destinations() and not any(_destinations(args, sinks)):
        return sinks  # nothing written for the user: nothing to check, nothing to resolve
    paths = run_paths(args, sinks, env=env, cwd=Path.cwd())
    check_writable(sinks, paths)
    return dataclasses.replace(sinks, tables_to_stderr=takes_standard_output(paths))
