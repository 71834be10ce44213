"""The command line's words: every command, its options and the help users read."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from harness import __version__
from harness.config.requests import BUILD_STAGES, DEFAULT_STAGE, TAKES
from harness.knobs import EXPORT_FORMATS, MEMORY_MARGIN_PERCENT, PROFILE_SAMPLE_INTERVAL

DESCRIPTION = """\
Verify the build-knobs patch on Matrix Authentication Service's Dockerfile: does it
apply (hunk by hunk), what does the patched Dockerfile mean, does it build, and does
it still fit before you bump the MAS submodule?

In a repository with MAS as a git submodule, say where once, in pyproject.toml:

  [tool.mas-harness]
  submodule = "docker/chat/mas/repo"
  patch = "docker/chat/mas/patches/patch-dockerfile.patch"

then run `mas-harness verify`, `mas-harness apply`, `mas-harness compat --bump-to latest`, `mas-harness bump latest`.
"""

EPILOG = """\
exit codes: 0 every check passed; 1 a check failed; 2 bad input (refused before any
work, nothing of yours written), or a report that could not be written after the work
(the message says what was done); 3 a tool or engine is missing; 4 an internal error of
the harness (please report it, with the output of the same command run with -v).
"""

REFRESH_DESCRIPTION = """\
Rebase a patch onto another upstream ref with git's three-way merge.

The patch's `index` line names its pre-image blob: that is the merge base, REF's
Dockerfile is one side, the pre-image with the patch applied the other. Context lines
need not match, so hunks survive upstream edits next to them. Every hunk is reported:
merged cleanly (and where), already upstream, or needs a human (each conflicting region
with REF's lines, the pre-image's and the patch's). --patch is never written.

  clean     the refreshed patch is written to --output (DEP-3 header kept, Last-Update
            bumped, the diff regenerated against REF's Dockerfile), then the static
            checks run on the patched file. Exit 0, or 1 if a static check fails.
  conflict  nothing is written, exit 1. --conflicts FILE writes REF's Dockerfile merged
            as far as it goes, with conflict markers: resolve it, then run again with
            --resolved FILE. --take-patch-side writes a candidate anyway, the patch's side
            taken where it did not merge, and exits 1: review those regions.
  upstream  REF already has every change: nothing is written, exit 1.

In a superproject the submodule's repository is the upstream and --patch defaults to
the configured patch. --output is never written over without --force.
"""


class _OneRef(argparse.Action):
    """A command that takes one ref, given two, says so: "the last one wins" would drop one silently."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        earlier = getattr(namespace, self.dest, None)
        if earlier is not None:
            parser.error(f"{option_string} {earlier} and {option_string} {values}: this command takes one ref")
        setattr(namespace, self.dest, values)


def _add_common(parser: argparse.ArgumentParser, *, json_file: bool = True) -> None:
    """What every command takes; SUPPRESS keeps a value given before the command from being reset after it."""
    group = parser.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log every command run")
    group.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="log only problems")
    group.add_argument("--json", action="store_true", help="print the JSON report instead of tables")
    if json_file:
        group.add_argument(
            "--output", dest="report_output", type=Path, metavar="FILE", help="also write the JSON report to FILE"
        )
    else:
        parser.set_defaults(report_output=None)
    group.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML to FILE, a case per check")
    group.add_argument(
        "--markdown", type=Path, metavar="FILE", help="also write Markdown to FILE ($GITHUB_STEP_SUMMARY gets it too)"
    )
    group.add_argument(
        "--github-annotations",
        action="store_true",
        help="print GitHub Actions ::error lines for failed checks that point at a file and line",
    )


def _add_upstream(parser: argparse.ArgumentParser, *, verdicts: bool = False, scripts: bool = False) -> None:
    group = parser.add_argument_group("upstream")
    group.add_argument("--upstream", help="git URL, local repository or bundle (default: $MAS_UPSTREAM, then the pins)")
    group.add_argument("--cache-dir", type=Path, help="checkout cache (default: $MAS_HARNESS_CACHE, else XDG cache)")
    group.add_argument("--pins", type=Path, help="pins file (default: $MAS_HARNESS_PINS, else the harness's own)")
    group.add_argument(
        "--offline", action="store_true", help="use only what the cache holds: refs are not looked up upstream again"
    )
    # Every option the run record reads has a value, given or not (harness.cli.main reads them by name).
    parser.set_defaults(no_cache=False, unconfined=False)
    if verdicts:
        group.add_argument(
            "--no-cache", action="store_true", help="recompute the static checks, ignoring stored verdicts"
        )
    if verdicts or scripts:
        group.add_argument(
            "--unconfined",
            action="store_true",
            help="run upstream's build script on this machine as you, with its network and files, where it cannot be "
            "confined (no bubblewrap, no user namespaces); by default its findings are then not checked (exit 3)",
        )


def _add_pre(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pre",
        action="store_true",
        help="with the ref `latest`: count pre-releases (v1.20.0-rc.1) too; by default it is the newest release",
    )


def _add_superproject(parser: argparse.ArgumentParser, *, patch_help: str) -> None:
    group = parser.add_argument_group(
        "superproject",
        "MAS as a git submodule; defaults come from [tool.mas-harness] in the superproject's pyproject.toml",
    )
    group.add_argument(
        "--superproject", type=Path, metavar="DIR", help="the superproject (default: found from . upward)"
    )
    group.add_argument("--submodule", type=Path, metavar="PATH", help="the MAS submodule (overrides `submodule`)")
    group.add_argument("--patch", type=Path, metavar="FILE", help=patch_help)


def _add_build_machine(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("build machine")
    gap = group.add_mutually_exclusive_group()
    gap.add_argument(
        "--air-gapped",
        dest="air_gapped",
        action="store_true",
        default=None,
        help="no registry: a local stand-in for upstream's Rust image, no `# syntax` line (default: when the "
        "registry does not resolve)",
    )
    gap.add_argument("--online", dest="air_gapped", action="store_false", help="pull from registries")
    group.add_argument(
        "--builder",
        metavar="NAME",
        help="the buildx builder to build on (a remote BuildKit, another engine's context); default: buildx's current",
    )
    home = group.add_mutually_exclusive_group()
    home.add_argument(
        "--load",
        action="store_true",
        help="load the built images into the local engine and check them there (the whole image crosses over)",
    )
    home.add_argument(
        "--export",
        choices=EXPORT_FORMATS,
        help="write the built images as tarballs into the report directory and check them there, never running "
        "their binary (no --version; the binary's bytes must carry this build's marker)",
    )
    group.add_argument("--source", default="standin", help="build context: standin (default), full, or a directory")
    group.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE", help="a build arg, repeatable")


Subparsers = argparse._SubParsersAction  # argparse names its subparsers type privately


def _command(
    sub: Subparsers[argparse.ArgumentParser], name: str, summary: str, description: str = ""
) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=summary,
        description=description or summary,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )


def _add_verify(sub: Subparsers[argparse.ArgumentParser]) -> None:
    verify = _command(
        sub,
        "verify",
        "check your patch against the MAS commit your superproject records",
        "Check your patch against the MAS commit your superproject records for its submodule (what `git submodule "
        "update` checks out): does it apply, hunk by hunk, and does the patched Dockerfile pass the static checks? "
        "Nothing is written.",
    )
    _add_superproject(verify, patch_help="your patch (overrides `patch`)")
    _add_upstream(verify, verdicts=True)
    _add_common(verify)


def _add_compat(sub: Subparsers[argparse.ArgumentParser]) -> None:
    compat = _command(
        sub,
        "compat",
        "would the patch fit an upstream ref? (in a superproject: --bump-to REF)",
        "Check the patch against upstream refs. In a superproject: against the recorded commit, or with --bump-to "
        "against the ref you would bump the submodule to (nothing of yours is touched). Elsewhere: against the "
        "harness's pinned releases, or the tags, branches and commits you name.",
    )
    compat.add_argument("ref_args", nargs="*", metavar="REF", help="a tag, branch or commit of the upstream")
    compat.add_argument("--ref", action="append", dest="refs", default=[], metavar="REF", help="the same, repeatable")
    compat.add_argument(
        "--latest", action="store_true", help="also the newest release the upstream has (the same as REF `latest`)"
    )
    compat.add_argument("--bump-to", metavar="REF", help="in a superproject: check the patch against REF (or latest)")
    _add_pre(compat)
    _add_superproject(compat, patch_help="use this patch for every ref (default: the series' variant for each)")
    _add_upstream(compat, verdicts=True)
    _add_common(compat)


def _add_tree_commands(sub: Subparsers[argparse.ArgumentParser]) -> None:
    for name, summary in (
        ("status", "does the patch apply to a checkout, is it applied, upstreamed, or in conflict?"),
        ("apply", "apply the patch to a checkout, once: a second apply does nothing; all or nothing"),
        ("revert", "undo an apply"),
    ):
        tree = _command(sub, name, summary)
        tree.add_argument(
            "--checkout",
            type=Path,
            metavar="DIR",
            help="an upstream checkout (default: the superproject's submodule, else .)",
        )
        _add_superproject(tree, patch_help="the patch (default: the configured one or series, else the pins' variant)")
        tree.add_argument("--pins", type=Path, help="pins file (default: $MAS_HARNESS_PINS, else the harness's own)")
        tree.set_defaults(upstream=None)  # the tree commands fetch nothing: their upstream is the checkout
        _add_common(tree)


def _add_check(sub: Subparsers[argparse.ArgumentParser]) -> None:
    check = _command(
        sub,
        "check",
        "what does the patched Dockerfile mean? (knobs, cargo's environment, targets, moved binaries, lint)",
    )
    target = check.add_mutually_exclusive_group()
    target.add_argument("--dockerfile", type=Path, metavar="FILE", help="an already patched Dockerfile")
    target.add_argument(
        "--ref", action="append", dest="refs", default=[], metavar="REF", help="patch REF's Dockerfile and check it"
    )
    check.add_argument("--pristine", type=Path, metavar="FILE", help="with --dockerfile: upstream's, to lint the diff")
    check.add_argument("--patch", type=Path, metavar="FILE", help="with --ref: use this patch")
    _add_upstream(check, verdicts=True)
    _add_common(check)


def _add_refresh(sub: Subparsers[argparse.ArgumentParser]) -> None:
    refresh = _command(
        sub, "refresh", "rebase a patch onto another upstream ref (three-way merge)", REFRESH_DESCRIPTION
    )
    refresh.add_argument(
        "--ref", action=_OneRef, required=True, help="the tag, branch or commit to move the patch onto (or latest)"
    )
    _add_pre(refresh)
    refresh.add_argument("--output", type=Path, required=True, metavar="FILE", help="where the refreshed patch goes")
    refresh.add_argument("--force", action="store_true", help="replace --output (or --conflicts) if it exists")
    refresh.add_argument("--conflicts", type=Path, metavar="FILE", help="on conflict: write the merge with markers")
    settle = refresh.add_mutually_exclusive_group()
    settle.add_argument("--resolved", type=Path, metavar="FILE", help="REF's Dockerfile as you resolved it")
    settle.add_argument(
        "--take-patch-side", action="store_true", help="on conflict: write a candidate with the patch's side taken"
    )
    refresh.add_argument("--date", type=date.fromisoformat, help="the Last-Update: date, YYYY-MM-DD (default: today)")
    _add_superproject(refresh, patch_help="the patch to refresh, never written (default: the configured one)")
    _add_upstream(refresh, verdicts=True)
    _add_common(refresh, json_file=False)


def _add_patch(sub: Subparsers[argparse.ArgumentParser]) -> None:
    export = _command(
        sub,
        "patch",
        "write the harness's patch variant for an upstream ref to a file",
        "Write the harness's patch variant for REF (chosen by its release range) to --output, when it applies to "
        "REF's Dockerfile; say whether it passes the static checks.",
    )
    export.add_argument(
        "--for", dest="ref", required=True, metavar="REF", help="the upstream tag, branch or commit (or latest)"
    )
    _add_pre(export)
    export.add_argument("--output", type=Path, required=True, metavar="FILE", help="where the patch goes")
    export.add_argument("--force", action="store_true", help="replace --output if it exists")
    export.add_argument("--superproject", type=Path, metavar="DIR", help="the superproject (default: found from .)")
    export.set_defaults(submodule=None, patch=None)  # the superproject's own; `patch` writes, never reads, a patch
    _add_upstream(export, scripts=True)
    _add_common(export, json_file=False)


BUMP_DESCRIPTION = """\
Move the superproject's MAS submodule to REF and make the patch fit, as one change.

It fetches REF into the submodule's repository when it is not there, checks it out
(detached, as `git submodule update` does), and when the patch no longer fits takes,
in this order unless --take says: your patch rebased by three-way merge, when every
hunk merges and the static checks hold; else the harness's variant for REF's range,
when it applies and the static checks hold. Then it stages the gitlink and the patch,
runs verify on the result, and writes the commit message (from -> to, the hunks, what
changed in upstream's release profile); --commit commits with it.

All or nothing: when a step fails (nothing fits, the re-check, the fetch, an
interrupt), the submodule's checkout, the index and the patch file are as they were,
and the error names the step. It refuses a submodule with local changes and staged
changes it would mix into the commit. Without REF it fits the patch to the commit the
superproject already records (what a bot's submodule pull request leaves). This is the
only command that writes your git state.
"""


def _add_bump(sub: Subparsers[argparse.ArgumentParser]) -> None:
    bump = _command(
        sub,
        "bump",
        "move the submodule to REF (or latest) and make the patch fit, staged, all or nothing",
        BUMP_DESCRIPTION,
    )
    bump.add_argument(
        "ref", nargs="?", metavar="REF", help="a tag, branch or commit, or latest (default: the recorded commit)"
    )
    bump.add_argument("--take", choices=TAKES, help="when the patch does not fit: only this way of fitting it")
    bump.add_argument("--dry-run", action="store_true", help="print the plan and the message; write nothing")
    bump.add_argument("--message-file", type=Path, metavar="FILE", help="write the commit message to FILE, not stdout")
    bump.add_argument("--commit", action="store_true", help="commit the bump with the message")
    _add_pre(bump)
    _add_superproject(bump, patch_help="your patch (overrides `patch`)")
    _add_upstream(bump, verdicts=True)
    _add_common(bump)


def _add_build(sub: Subparsers[argparse.ArgumentParser]) -> None:
    build = _command(
        sub,
        "build",
        "build the patched Dockerfile for real and check the image (needs the `build` extra and a Docker engine)",
    )
    build.add_argument(
        "--ref", action=_OneRef, required=True, help="the upstream ref whose patched Dockerfile is built"
    )
    build.add_argument(
        "--stage",
        choices=BUILD_STAGES,
        default=DEFAULT_STAGE,
        help="builder (default): the stage that compiles; final: then the last stage, the image users ship, "
        "checked to run the builder's binary as its entrypoint and user",
    )
    build.add_argument("--report-dir", type=Path, help="where report.json, build.log and sampler.json go")
    build.add_argument(
        "--trace",
        action="store_true",
        help="record every rustc and build-script run from inside the build (a rustc wrapper the build copy "
        "compiles) and write trace.json into the report directory; `profile` always does",
    )
    build.add_argument("--patch", type=Path, metavar="FILE", help="use this patch")
    _add_build_machine(build)
    _add_upstream(build)
    _add_common(build)


def _add_profile(sub: Subparsers[argparse.ArgumentParser]) -> None:
    profile = _command(sub, "profile", "build one ref once per knob profile and report each one's memory and time")
    profile.add_argument("--ref", action=_OneRef, help="the upstream ref (default: the newest pin)")
    profile.add_argument(
        "--profile",
        action="append",
        dest="profiles",
        default=[],
        metavar="NAME",
        help="a profile to build, repeatable, in order (default: low-ram, ci, upstream; also fat-lto and "
        "[profiles.NAME] of the pins file)",
    )
    profile.add_argument(
        "--interval",
        type=float,
        default=PROFILE_SAMPLE_INTERVAL,
        help=f"seconds between samples (default {PROFILE_SAMPLE_INTERVAL:g})",
    )
    profile.add_argument("--report-dir", type=Path, help="where profile.json/.md and memory.png/.svg go")
    profile.add_argument("--keep-images", action="store_true", help="keep each profile's image and target cache")
    nothing_built = profile.add_mutually_exclusive_group()
    nothing_built.add_argument(
        "--from-report", type=Path, metavar="JSON", help="build nothing: render a profile.json again"
    )
    nothing_built.add_argument(
        "--dry-run",
        action="store_true",
        help="build nothing: show each profile's build args and where they come from (needs no Docker)",
    )
    _add_build_machine(profile)
    _add_upstream(profile)
    _add_common(profile)


ADVISE_DESCRIPTION = """\
Which CARGO_BUILD_JOBS, LTO and codegen units build MAS fastest within a memory budget?

Predicted, not built: every candidate (jobs 1..--cpus x each LTO and codegen-units setting
there is a trace of) is a replay of cargo's schedule of a measured build trace, with the
peak memory a limit on the build would see and the wall time. The fastest candidate whose
peak fits under the budget less the margin is marked, with the build args for your
build.sh and for `mas-harness build`. Exit 0 when one fits, 1 when none does (the lowest
peak is shown). Needs neither an engine nor the `build` extra (--plot does: matplotlib).

Without --trace it reads the traces the harness ships for pinned releases (a ref without
one takes the nearest traced release, and says so). The model and its known errors:
docs/advise-model.md.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of CPUs (1 or more)")
    return value


def _percent(text: str) -> float:
    try:
        value = float(text.removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage") from None
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage from 0 to under 100")
    return value


def _add_advise(sub: Subparsers[argparse.ArgumentParser]) -> None:
    advise = _command(
        sub,
        "advise",
        "which build settings fit a memory budget fastest? (predicted from build traces)",
        ADVISE_DESCRIPTION,
    )
    advise.add_argument(
        "--memory",
        required=True,
        metavar="SIZE",
        help="the memory the build may use: 16G, 4GiB, 512M (K/M/G/T binary, as Docker reads them; KB/MB/GB decimal)",
    )
    advise.add_argument(
        "--cpus", type=_positive_int, metavar="N", help="CPUs of the machine that builds (default: this one's)"
    )
    advise.add_argument(
        "--ref", action=_OneRef, help="the MAS release to build (default: the newest traced one, or the traces')"
    )
    advise.add_argument(
        "--trace",
        action="append",
        dest="traces",
        default=[],
        type=Path,
        metavar="FILE",
        help="a trace.json to predict from, repeatable (default: the traces the harness ships)",
    )
    advise.add_argument(
        "--margin",
        type=_percent,
        metavar="PERCENT",
        help=f"room kept under --memory (default {MEMORY_MARGIN_PERCENT:g}: the model's peak is validated to within "
        "10 %%)",
    )
    advise.add_argument(
        "--plot", type=Path, metavar="FILE", help="also draw predicted wall against peak to FILE (.png, .svg, .pdf)"
    )
    _add_common(advise)


def _add_summary(sub: Subparsers[argparse.ArgumentParser]) -> None:
    summary = _command(sub, "summary", "one table of the reports a CI run wrote; fails if a part failed or is missing")
    summary.add_argument("--reports", type=Path, default=Path("reports"), help="the reports directory")
    summary.add_argument("--pytest", action="append", default=[], metavar="XML", help="a pytest JUnit file")
    summary.add_argument("--refs", action="append", default=[], metavar="JSON", help="a compat/check/verify report")
    summary.add_argument("--profile", action="append", dest="profiles", default=[], metavar="JSON", help="profile.json")
    _add_common(summary)


def _add_install_engine(sub: Subparsers[argparse.ArgumentParser]) -> None:
    install = _command(
        sub, "install-engine", "install and start a BuildKit-capable Docker engine on Debian (as root), for builds"
    )
    install.add_argument("--print", action="store_true", help="print the installer script instead of running it")


REPORT_PATH_DEFAULTS: dict[str, object] = {
    "superproject": None,
    "submodule": None,
    "patch": None,
    "upstream": None,
    "pins": None,
    "resolved": None,
    "dockerfile": None,
    "pristine": None,
    "from_report": None,
    "traces": (),
    "checkout": None,
    "force": False,
    "conflicts": None,
    "plot": None,
    "message_file": None,
    "report_dir": None,
}
"""Each attribute of the parsed arguments harness.cli.report_paths reads, as a command without the option has it."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mas-harness",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    parser.add_argument("-q", "--quiet", action="store_true", help="log only problems")
    # What harness.cli.report_paths reads of every command (the files it reads, the trees it works on, the files it
    # writes) has a value in each: a command's own option overrides these.
    parser.set_defaults(**REPORT_PATH_DEFAULTS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_verify,
        _add_compat,
        _add_tree_commands,
        _add_check,
        _add_refresh,
        _add_patch,
        _add_bump,
        _add_build,
        _add_profile,
        _add_advise,
        _add_summary,
        _add_install_engine,
    ):
        add(sub)
    return parser
