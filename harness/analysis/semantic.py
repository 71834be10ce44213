"""Semantic checks of a patched MAS Dockerfile, without Docker: each a named Finding about one line.

Reading the file (ARG and ENV positions, what the cargo command line says) is
combined with running the build script in the sandbox (harness.analysis.sandbox)
under every scenario of the Dockerfile's shape (harness.analysis.scenarios).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePosixPath

from harness.analysis import dockerfile as dfm
from harness.analysis import environment
from harness.analysis.confine import Confinement
from harness.analysis.dockerfile import Dockerfile, RunStep, Stage
from harness.analysis.findings import Finding, last_line
from harness.analysis.sandbox import INSTALL_PREFIX, ScriptRun, open_sandbox, option_values, run_build_script
from harness.analysis.scenarios import KNOB_PROBES, SHAPE_RULES, Scenario, ShapeRules
from harness.knobs import ARCH_TRIPLES, BUILDER_STAGE, CARGO_KNOBS, KNOB_DEFAULTS, SUPPORTED_TRIPLES, TARGETS, Shape


def detect_shape(df: Dockerfile) -> Shape:
    """`single` when every stage copies the builder's binary from /usr/local/bin/mas-cli, else `per-arch`.

    For a Dockerfile checked on its own, with no series to say which shape it should have.
    """
    names = set()
    for stage in df.stages:
        for copy in stage.copies_from:
            if copy.source_stage.lower() != BUILDER_STAGE:
                continue
            env = environment.environment_at(df, stage, copy.line, {}, targetarch="amd64")
            names |= {PurePosixPath(environment.expand(s, env)).name for s in copy.sources}
    binaries = {n for n in names if n.startswith("mas-cli")}
    return "single" if binaries == {"mas-cli"} else "per-arch"


EXECUTED_CHECKS = ("cargo-env", "target-flags", "move-step", "rustup-targets", "targets-validated")
"""The findings that come from running the build script; the others read the file."""


def check_dockerfile(
    df: Dockerfile,
    *,
    confinement: Confinement,
    name: str = "Dockerfile",
    knob_defaults: Mapping[str, str] = KNOB_DEFAULTS,
    shape: Shape | None = None,
) -> list[Finding]:
    """All semantic checks of a patched Dockerfile of the given shape (None: read from the file's COPY lines).

    The build script runs as `confinement` says; where it cannot run confined (and
    --unconfined was not given), the findings that need it are errors saying why.
    Raises DockerfileError (a BadInput) naming the file as `name` if it has no
    builder stage with one cargo build RUN.
    """
    try:
        stage = df.builder
        build_run = dfm.find_build_run(stage)
    except dfm.DockerfileError as e:
        raise type(e)(f"{name}: {e}") from e
    rules = SHAPE_RULES[shape or detect_shape(df)]
    declared = check_knobs_declared(stage, build_run, knob_defaults)
    if not confinement.available:
        return [*declared, *not_run(build_run, confinement)]
    # The runs are independent and spend their time waiting on sh and the doubles: one at a time per CPU.
    workers = os.cpu_count() or 1
    with open_sandbox(confinement) as sandbox, ThreadPoolExecutor(max_workers=workers) as pool:
        runs = list(
            pool.map(
                lambda s: run_build_script(
                    df,
                    s.build_args,
                    targetarch=s.targetarch,
                    sandbox=sandbox,
                    workdir_files=s.workdir_files,
                ),
                (*rules.good, *rules.bad),
            )
        )
    good = list(zip(rules.good, runs[: len(rules.good)], strict=True))
    bad = list(zip(rules.bad, runs[len(rules.good) :], strict=True))
    return [
        *declared,
        *check_script_limits(zip((*rules.good, *rules.bad), runs, strict=True)),
        *check_cargo_env(stage, build_run, good),
        *check_target_flags(build_run, good),
        *check_move_step(build_run, good, rules),
        *check_rustup_targets(stage, build_run, good),
        *check_targets_validated(build_run, bad),
    ]


def not_run(build_run: RunStep, confinement: Confinement) -> list[Finding]:
    """Each finding that needs the build script run, as an error: the machine cannot run it confined."""
    return [
        Finding(
            check=check,
            ok=False,
            line=build_run.start_line,
            message=f"not checked: {confinement.unavailable}",
            error=True,
            needs="confinement",
        )
        for check in EXECUTED_CHECKS
    ]


def check_script_limits(runs: Iterable[tuple[Scenario, ScriptRun]]) -> list[Finding]:
    """A build script the harness had to stop (a time, CPU or file-size limit) fails; the others pass."""
    stopped = [(scenario, run) for scenario, run in runs if run.stopped is not None]
    if not stopped:
        return []
    scenario, run = stopped[0]
    more = f" (and in {len(stopped) - 1} more scenarios)" if len(stopped) > 1 else ""
    return [
        Finding(
            check="script-limits",
            ok=False,
            line=run.failed_line,
            message=f"the RUN at line {run.failed_line} was {run.stopped} with {scenario.label}{more}",
        )
    ]


def check_knobs_declared(stage: Stage, build_run: RunStep, defaults: Mapping[str, str]) -> list[Finding]:
    findings = []
    for knob, expected in defaults.items():
        decls = [a for a in stage.args if a.name == knob]
        before = [a for a in decls if a.line < build_run.start_line]
        if not before:
            where = f"only after it, line {decls[0].line}" if decls else "nowhere in the stage"
            findings.append(
                Finding(
                    check="knobs-declared",
                    ok=False,
                    line=decls[0].line if decls else build_run.start_line,
                    message=f"ARG {knob} must be declared in the builder stage before the cargo build "
                    f"RUN (line {build_run.start_line}); it is declared {where}",
                )
            )
            continue
        effective = before[-1]  # the declaration the RUN sees when no build arg is given
        shown = "no default" if effective.default is None else f"default {effective.default!r}"
        findings.append(
            Finding(
                check="knobs-declared",
                ok=effective.default == expected,
                line=effective.line,
                message=f"ARG {knob} has {shown}"
                + ("" if effective.default == expected else f", expected {expected!r}"),
            )
        )
    return findings


def check_cargo_env(stage: Stage, build_run: RunStep, good: Sequence[tuple[Scenario, ScriptRun]]) -> list[Finding]:
    findings = []
    for knob in CARGO_KNOBS:
        sets = [e for e in stage.envs if e.name == knob and e.line < build_run.start_line]
        if not sets:
            findings.append(
                Finding(
                    check="cargo-env",
                    ok=False,
                    line=build_run.start_line,
                    message=f"no ENV {knob}=${{{knob}}} in the builder stage before the cargo build "
                    f"RUN: cargo may see the build arg, but the image does not record it",
                )
            )
            continue
        env_set = sets[-1]
        arg_first = stage.arg(knob)
        refers = environment.expand(env_set.value, {knob: KNOB_PROBES[knob]}) == KNOB_PROBES[knob]
        declared = arg_first is not None and arg_first.line < env_set.line
        ok = refers and declared
        why = (
            ""
            if ok
            else (
                f": its value {env_set.value!r} is not ${{{knob}}}"
                if not refers
                else f": ARG {knob} is not declared before it, so it expands to nothing"
            )
        )
        findings.append(
            Finding(
                check="cargo-env",
                ok=ok,
                line=env_set.line,
                message=f"ENV {knob}={env_set.value}" + (" takes the build arg" if ok else why),
            )
        )
    probe = [(s, r) for s, r in good if all(s.build_args.get(k) == v for k, v in KNOB_PROBES.items())]
    for scenario, result in probe:
        builds = result.cargo_builds
        wrong = sorted({f"{k}={c.env.get(k)!r}" for c in builds for k, v in KNOB_PROBES.items() if c.env.get(k) != v})
        ok = bool(builds) and not wrong
        findings.append(
            Finding(
                check="cargo-env",
                ok=ok,
                line=build_run.start_line,
                message=f"running the build script ({scenario.label}): "
                + (
                    "cargo saw " + ", ".join(f"{k}={v}" for k, v in KNOB_PROBES.items())
                    if ok
                    else "cargo did not run"
                    if not builds
                    else "cargo saw " + ", ".join(wrong)
                ),
            )
        )
    return findings


def check_target_flags(build_run: RunStep, good: Sequence[tuple[Scenario, ScriptRun]]) -> list[Finding]:
    findings = []
    literal = []
    for words in dfm.commands_of(build_run, "cargo", "auditable", "build"):
        values = option_values(words, "--target")
        literal += [w for w in words if w in SUPPORTED_TRIPLES] + [v for v in values if "$" not in v]
    findings.append(
        Finding(
            check="target-flags",
            ok=not literal,
            line=build_run.start_line,
            message="the cargo build command line has no hard-coded target"
            if not literal
            else "hard-coded target(s) on the cargo build command line: " + " ".join(dict.fromkeys(literal)),
        )
    )
    for scenario, result in good:
        builds = result.cargo_builds
        got = result.cargo_targets
        ok = len(builds) == 1 and sorted(got) == sorted(scenario.expected)
        findings.append(
            Finding(
                check="target-flags",
                ok=ok,
                line=build_run.start_line,
                message=f"running the build script ({scenario.label}): cargo ran {len(builds)} build(s) with --target "
                f"{' '.join(got) or '(none)'}" + ("" if ok else f"; expected {' '.join(scenario.expected)}"),
            )
        )
    return findings


def check_move_step(
    build_run: RunStep, good: Sequence[tuple[Scenario, ScriptRun]], rules: ShapeRules = SHAPE_RULES["per-arch"]
) -> list[Finding]:
    note = f"(script run with {INSTALL_PREFIX} rewritten to a temporary directory)"
    findings = []
    for scenario, result in good:
        built = result.cargo_targets
        expected = {rules.binary(t): f"mas-cli built for {t}\n" for t in built}
        problems = []
        if result.returncode != 0:
            problems.append(
                f"the RUN at line {result.failed_line} exited {result.returncode}: {last_line(result.stderr)}"
            )
        if dict(result.installed) != expected:
            problems.append(f"moved {_describe(result.installed)}, expected {_describe(expected)}")
        if result.left_in_target:
            problems.append("left in target/: " + " ".join(result.left_in_target))
        later = [line for line in result.steps if line != build_run.start_line]
        steps = f" (with the move steps at line {', '.join(map(str, later))})" if later else ""
        findings.append(
            Finding(
                check="move-step",
                ok=not problems,
                line=build_run.start_line,
                message=f"{scenario.label}: "
                + ("; ".join(problems) if problems else f"moved {_describe(result.installed)}{steps} {note}"),
            )
        )
        if scenario.build_args:
            continue  # the final stages copy what the default (TARGETARCH) build produces
        for copy in result.copy_sources:
            want = f"mas-cli built for {ARCH_TRIPLES[scenario.targetarch]}\n"
            ok = copy.content == want
            findings.append(
                Finding(
                    check="move-step",
                    ok=ok,
                    line=copy.line,
                    message=f"COPY --from=builder {copy.path} (TARGETARCH={scenario.targetarch}): "
                    + (
                        "the builder produces it"
                        if ok
                        else "the builder does not produce it"
                        if copy.content is None
                        else f"holds {copy.content.strip()!r}, not the {scenario.targetarch} build"
                    ),
                )
            )
    return findings


def check_rustup_targets(stage: Stage, build_run: RunStep, good: Sequence[tuple[Scenario, ScriptRun]]) -> list[Finding]:
    findings = []
    for other in stage.runs:
        if other.start_line == build_run.start_line or other.exec_form:
            continue
        for words in dfm.commands_of(other, "rustup"):
            adds = words[1:2] == ["target"] and words[2:3] in (["add"], ["install"])
            if adds or "--target" in words or "-t" in words:
                findings.append(
                    Finding(
                        check="rustup-targets",
                        ok=False,
                        line=other.start_line,
                        message=f"a RUN other than the build step installs rustup targets whatever "
                        f"MAS_BUILD_TARGETS says: {' '.join(words)}",
                    )
                )
    for scenario, result in good:
        got = result.rustup_targets
        first_cargo = next((i for i, c in enumerate(result.calls) if c.tool == "cargo"), len(result.calls))
        late = any(c.tool == "rustup" for c in result.calls[first_cargo:])
        ok = sorted(got) == sorted(scenario.expected) and not late
        findings.append(
            Finding(
                check="rustup-targets",
                ok=ok,
                line=build_run.start_line,
                message=f"running the build script ({scenario.label}): rustup added {' '.join(got) or '(none)'}"
                + ("" if sorted(got) == sorted(scenario.expected) else f"; expected {' '.join(scenario.expected)}")
                + ("; rustup ran after cargo" if late else ""),
            )
        )
    return findings


def check_targets_validated(build_run: RunStep, bad: Sequence[tuple[Scenario, ScriptRun]]) -> list[Finding]:
    findings = []
    for scenario, result in bad:
        lines = result.stderr.strip().splitlines()
        problems = []
        if result.returncode == 0:
            problems.append("the script succeeded")
        if result.calls:
            problems.append("it ran " + ", ".join(dict.fromkeys(c.tool for c in result.calls)) + " first")
        if result.installed or result.left_in_target or result.new_files_in_workdir:
            problems.append(
                "it left files: " + " ".join([*result.installed, *result.left_in_target, *result.new_files_in_workdir])
            )
        if len(lines) != 1 or TARGETS not in lines[0]:
            problems.append(f"stderr is not one line naming {TARGETS}: {result.stderr.strip()!r}")
        value = scenario.build_args.get(TARGETS, "")
        findings.append(
            Finding(
                check="targets-validated",
                ok=not problems,
                line=build_run.start_line,
                message=f"{scenario.label} (MAS_BUILD_TARGETS={value!r}, TARGETARCH={scenario.targetarch}): "
                + ("; ".join(problems) if problems else f"refused: {lines[0]}"),
            )
        )
    return findings


def _describe(files: Mapping[str, str]) -> str:
    if not files:
        return "nothing"
    return ", ".join(f"{INSTALL_PREFIX}{n} ({c.strip()})" for n, c in sorted(files.items()))
