"""The static checks: every check passes on the patched Dockerfiles and each hand-made mutant trips the right one."""

from __future__ import annotations

import pytest

from harness.analysis import dockerfile as dfm
from harness.analysis.confine import Confinement
from harness.analysis.dockerfile import DockerfileError, ParsedOnce
from harness.analysis.findings import Finding
from harness.analysis.lint import check_hadolint_new_findings, check_shellcheck, tool_path
from harness.analysis.semantic import check_dockerfile, detect_shape
from harness.analysis.static import StaticChecks, check_patched
from harness.analysis.verdicts import VerdictCache
from harness.config.pins import Pins
from harness.errors import BadInput, EnvironmentProblem
from harness.knobs import KNOB_DEFAULTS, Shape
from tests.support import DockerfileTexts

TAGS = ("v0.14.0", "v0.15.0", "v1.7.0", "v1.11.0", "v1.17.0", "v1.18.0")
CHECKS = {"knobs-declared", "cargo-env", "target-flags", "move-step", "rustup-targets", "targets-validated"}


@pytest.fixture(scope="session")
def patched(dockerfile_texts: DockerfileTexts) -> str:
    return dockerfile_texts("v1.7.0")[1]


def failing(findings: list[Finding]) -> set[str]:
    return {f.check for f in findings if not f.ok}


def mutate(text: str, old: str, new: str) -> str:
    # Exactly one occurrence: if the patch changes, the mutant must be rewritten, not silently become a no-op.
    assert text.count(old) == 1, f"mutation anchor not found exactly once: {old!r}"
    return text.replace(old, new)


@pytest.mark.parametrize("tag", TAGS)
def test_patched_dockerfiles_pass_every_check(
    confinement: Confinement, dockerfile_texts: DockerfileTexts, pins: Pins, tag: str, shared_verdicts: VerdictCache
) -> None:
    # Through the session's verdict store, as compat computes them: each pin's checks run once a session.
    pristine, patched = dockerfile_texts(tag)
    shape = pins.series.choose(tag).variant.shape
    checks = StaticChecks(confinement=confinement, verdicts=shared_verdicts)
    everything = check_patched(patched, pristine=pristine, shape=shape, checks=checks)
    lint_checks = {"shellcheck", "hadolint-new-findings"}
    findings = [f for f in everything if f.check not in lint_checks]
    assert {f.check for f in findings} == CHECKS
    assert failing(findings) == set(), [f for f in findings if not f.ok]
    lint = [f for f in everything if f.check in lint_checks]
    assert [f for f in lint if not f.ok] == []
    assert {f.check for f in lint} == lint_checks


@pytest.mark.parametrize(
    ("tag", "shape", "expected"),
    [
        ("v0.14.0", "per-arch", {"knobs-declared", "cargo-env", "target-flags", "rustup-targets", "targets-validated"}),
        ("v1.7.0", "per-arch", {"knobs-declared", "cargo-env", "target-flags", "rustup-targets", "targets-validated"}),
        # Upstream builds the TARGETARCH target only from v1.18.0: what is left is the knobs and their validation.
        ("v1.18.0", "single", {"knobs-declared", "cargo-env", "rustup-targets", "targets-validated"}),
    ],
)
def test_upstream_dockerfile_fails_the_checks(
    confinement: Confinement, dockerfile_texts: DockerfileTexts, tag: str, shape: Shape, expected: set[str]
) -> None:
    findings = check_dockerfile(
        dfm.parse(dockerfile_texts(tag)[0]), name="upstream", shape=shape, confinement=confinement
    )
    assert failing(findings) == expected, [f for f in findings if not f.ok]


def test_the_shape_is_read_from_the_copy_lines_when_not_given(
    confinement: Confinement, dockerfile_texts: DockerfileTexts
) -> None:
    assert detect_shape(dfm.parse(dockerfile_texts("v0.14.0")[1])) == "per-arch"
    assert detect_shape(dfm.parse(dockerfile_texts("v1.7.0")[1])) == "per-arch"
    assert detect_shape(dfm.parse(dockerfile_texts("v1.18.0")[1])) == "single"
    assert failing(check_dockerfile(dfm.parse(dockerfile_texts("v1.18.0")[1]), confinement=confinement)) == set()


def test_one_shape_does_not_pass_for_the_other(confinement: Confinement, dockerfile_texts: DockerfileTexts) -> None:
    """The shapes are different rules, not a looser common one: each patched file fails the other's."""
    single = check_dockerfile(dfm.parse(dockerfile_texts("v1.18.0")[1]), shape="per-arch", confinement=confinement)
    assert failing(single) == {"cargo-env", "target-flags", "move-step", "rustup-targets"}
    per_arch = check_dockerfile(dfm.parse(dockerfile_texts("v1.7.0")[1]), shape="single", confinement=confinement)
    assert failing(per_arch) == {"move-step", "targets-validated"}


ENV_BLOCK = (
    "ENV \\\n"
    "  CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS} \\\n"
    "  CARGO_PROFILE_RELEASE_LTO=${CARGO_PROFILE_RELEASE_LTO} \\\n"
    "  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=${CARGO_PROFILE_RELEASE_CODEGEN_UNITS}\n"
)
CARGO_TAIL = '    --features docker \\\n    "$@"; \\\n'
ARM_MOVE = '      aarch64-unknown-linux-gnu) mv "target/${target}/release/mas-cli" /usr/local/bin/mas-cli-arm64 ;; \\\n'
LOOP_END = "    esac; \\\n  done\n"
RUSTUP = 'rustup target add --toolchain "${RUSTC_VERSION}" "$@";'
DPKG_RUN = "RUN --network=none \\\n  dpkg --add-architecture arm64"
MUTANTS: dict[str, tuple[list[tuple[str, str]], set[str]]] = {
    # (a) the cargo knobs are not exported as ENV: cargo would still see the ARGs, the image would not record them
    "a-env-removed": ([(ENV_BLOCK, "")], {"cargo-env"}),
    # (b) both triples hard-coded on the cargo command line; the move loop then misses the unrequested one
    "b-cargo-targets-hardcoded": (
        [
            (
                CARGO_TAIL,
                "    --features docker \\\n    --target x86_64-unknown-linux-gnu \\\n"
                "    --target aarch64-unknown-linux-gnu; \\\n",
            )
        ],
        {"target-flags", "move-step"},
    ),
    # (b2) the target list itself hard-coded: MAS_BUILD_TARGETS (and its validation) ignored
    "b2-target-list-hardcoded": (
        [
            (
                "for target in ${MAS_BUILD_TARGETS}; do",
                "for target in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu; do",
            )
        ],
        {"target-flags", "rustup-targets", "targets-validated"},
    ),
    # (c) the move step moves arm64 whatever was built
    "c-arm64-moved-unconditionally": (
        [
            (ARM_MOVE, ""),
            (
                LOOP_END,
                '    esac; \\\n  done; \\\n  mv "target/aarch64-unknown-linux-gnu/release/mas-cli" '
                "/usr/local/bin/mas-cli-arm64\n",
            ),
        ],
        {"move-step"},
    ),
    # (d) a knob default changed
    "d-jobs-default-16": ([("ARG CARGO_BUILD_JOBS=2\n", "ARG CARGO_BUILD_JOBS=16\n")], {"knobs-declared"}),
    # (e) an ARG declared after the RUN that uses it: its ENV then expands to nothing
    "e-arg-after-run": (
        [
            ("ARG CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16\n", ""),
            (LOOP_END + "\n", LOOP_END + "ARG CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16\n\n"),
        ],
        {"knobs-declared", "cargo-env"},
    ),
    # (f) a RUN installing the aarch64 target unconditionally, as upstream did
    "f-rustup-extra-run": (
        [
            (
                DPKG_RUN,
                'RUN --network=default \\\n  rustup target add --toolchain "${RUSTC_VERSION}" '
                "aarch64-unknown-linux-gnu\n\n" + DPKG_RUN,
            )
        ],
        {"rustup-targets"},
    ),
    # (f2) the build step's rustup call adding aarch64 unconditionally
    "f2-rustup-extra-target": (
        [(RUSTUP, 'rustup target add --toolchain "${RUSTC_VERSION}" "$@" aarch64-unknown-linux-gnu;')],
        {"rustup-targets"},
    ),
    # (g) noglob dropped: `*` expands to a file named like a triple and passes validation
    "g-glob-enabled": ([("set -euf;", "set -eu;")], {"targets-validated"}),
    # (h) validation dropped: bad input reaches rustup and cargo
    "h-no-validation": (
        [("x86_64-unknown-linux-gnu|aarch64-unknown-linux-gnu) ;;", "*) ;;")],
        {"targets-validated"},
    ),
    # (i) the final stage copies a path the builder does not produce
    "i-copy-wrong-path": (
        [
            (
                "FROM gcr.io/distroless/cc-debian${DEBIAN_VERSION}:nonroot\n\nARG TARGETARCH\n"
                "COPY --from=builder /usr/local/bin/mas-cli-${TARGETARCH} /usr/local/bin/mas-cli\n",
                "FROM gcr.io/distroless/cc-debian${DEBIAN_VERSION}:nonroot\n\nARG TARGETARCH\n"
                "COPY --from=builder /usr/local/bin/mas-cli /usr/local/bin/mas-cli\n",
            )
        ],
        {"move-step"},
    ),
}


MOVE_LOOP = (
    '    "$@"; \\\n  for target in "$@"; do \\\n    case "${target}" in \\\n'
    '      x86_64-unknown-linux-gnu) mv "target/${target}/release/mas-cli" /usr/local/bin/mas-cli-amd64 ;; \\\n'
    + ARM_MOVE
    + LOOP_END
)
# A later step moving whatever was built: right where target/ is in the image layer (v0.14), wrong where
# it is a cache mount (v0.15 on), since a RUN without the mount does not see it.
SEPARATE_MOVE_STEP = (
    '    "$@"\n\nRUN --network=none \\\n'
    "  for arch in amd64 arm64; do \\\n"
    '    case "${arch}" in amd64) triple=x86_64-unknown-linux-gnu ;; *) triple=aarch64-unknown-linux-gnu ;; esac; \\\n'
    '    if [ -f "target/${triple}/release/mas-cli" ]; then \\\n'
    '      mv "target/${triple}/release/mas-cli" "/usr/local/bin/mas-cli-${arch}"; \\\n'
    "    fi; \\\n"
    "  done\n"
)
MUTANTS["c2-move-outside-the-cache-mount"] = ([(MOVE_LOOP, SEPARATE_MOVE_STEP)], {"move-step"})


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_is_caught_by_the_right_check(confinement: Confinement, patched: str, mutant: str) -> None:
    edits, expected = MUTANTS[mutant]
    text = patched
    for old, new in edits:
        text = mutate(text, old, new)
    assert failing(check_dockerfile(dfm.parse(text), shape="per-arch", confinement=confinement)) == expected


# --- the v0.14 shape: a two-target build, then upstream's two separate move steps -----------------

UPSTREAM_V014_MOVES = (
    "\n# Move the binary to avoid having to guess its name in the next stage\n"
    'RUN --network=none \\\n  mv "target/x86_64-unknown-linux-gnu/release/mas-cli" /usr/local/bin/mas-cli-amd64\n'
    'RUN --network=none \\\n  mv "target/aarch64-unknown-linux-gnu/release/mas-cli" /usr/local/bin/mas-cli-arm64\n'
)
V014_MUTANTS: dict[str, tuple[list[tuple[str, str]], set[str]]] = {
    # upstream's separate move steps left in place: they fail for any target that was not requested
    "v014-upstream-moves-kept": ([(LOOP_END, LOOP_END + UPSTREAM_V014_MOVES)], {"move-step"}),
    # copied, not moved: no cache mount in this shape, so the copy stays in the image layer
    "v014-copy-not-move": (
        [('x86_64-unknown-linux-gnu) mv "target/', 'x86_64-unknown-linux-gnu) cp "target/')],
        {"move-step"},
    ),
    # the rustup step of upstream kept: both targets downloaded whatever was asked
    "v014-rustup-kept": (
        [
            (
                DPKG_RUN,
                'RUN --network=default \\\n  rustup target add  \\\n  --toolchain "${RUSTC_VERSION}" \\\n'
                "  x86_64-unknown-linux-gnu \\\n  aarch64-unknown-linux-gnu\n\n" + DPKG_RUN,
            )
        ],
        {"rustup-targets"},
    ),
    "v014-env-removed": ([(ENV_BLOCK, "")], {"cargo-env"}),
    "v014-no-validation": (
        [("x86_64-unknown-linux-gnu|aarch64-unknown-linux-gnu) ;;", "*) ;;")],
        {"targets-validated"},
    ),
}


def test_v0_14_shape_may_move_in_a_separate_step(confinement: Confinement, dockerfile_texts: DockerfileTexts) -> None:
    # No cache mount on target/ in this shape: a later RUN sees what the build left there.
    text = mutate(
        dockerfile_texts("v0.14.0")[1], MOVE_LOOP.replace("    ", "  ", 1), SEPARATE_MOVE_STEP.replace("    ", "  ", 1)
    )
    findings = check_dockerfile(dfm.parse(text), shape="per-arch", confinement=confinement)
    assert failing(findings) == set()
    assert any("with the move steps at line" in f.message for f in findings if f.check == "move-step")


@pytest.mark.parametrize("mutant", sorted(V014_MUTANTS))
def test_v0_14_mutant_is_caught_by_the_right_check(
    confinement: Confinement, dockerfile_texts: DockerfileTexts, mutant: str
) -> None:
    edits, expected = V014_MUTANTS[mutant]
    text = dockerfile_texts("v0.14.0")[1]
    for old, new in edits:
        text = mutate(text, old, new)
    assert failing(check_dockerfile(dfm.parse(text), shape="per-arch", confinement=confinement)) == expected


# --- the v1.18+ shape: one target per build, from TARGETARCH, moved to /usr/local/bin/mas-cli ---------

SINGLE_MOVE = '  mv "target/${RUST_TARGET}/release/mas-cli" /usr/local/bin/mas-cli\n'
NAMED_CHECK = 'if [ "${target}" != "${RUST_TARGET}" ]; then'
ONE_ONLY_CHECK = 'if [ -n "${named}" ]; then'
SINGLE_MUTANTS: dict[str, tuple[list[tuple[str, str]], set[str]]] = {
    # moved to the per-arch path of the older shape: the final stages copy /usr/local/bin/mas-cli
    "s-per-arch-destination": (
        [(SINGLE_MOVE, '  mv "target/${RUST_TARGET}/release/mas-cli" /usr/local/bin/mas-cli-${TARGETARCH}\n')],
        {"move-step"},
    ),
    # the other architecture's triple accepted (and silently ignored: TARGETARCH's is built)
    "s-other-triple-accepted": ([(NAMED_CHECK, 'if [ "${target}" = "never" ]; then')], {"targets-validated"}),
    # several words accepted
    "s-two-targets-accepted": ([(ONE_ONLY_CHECK, 'if [ -n "" ]; then')], {"targets-validated"}),
    # the build takes MAS_BUILD_TARGETS as the target: a second word becomes a second build target
    "s-targets-not-from-targetarch": (
        [
            ('    --target "${RUST_TARGET}"; \\\n', "    --target ${MAS_BUILD_TARGETS:-${RUST_TARGET}}; \\\n"),
            (ONE_ONLY_CHECK, 'if [ -n "" ]; then'),
            (NAMED_CHECK, 'if [ "${target}" = "never" ]; then'),
        ],
        {"targets-validated"},
    ),
    # a hard-coded triple: wrong for arm64, and the move then misses
    "s-target-hardcoded": (
        [('    --target "${RUST_TARGET}"; \\\n', "    --target x86_64-unknown-linux-gnu; \\\n")],
        {"target-flags", "move-step"},
    ),
    # both rustup targets, as upstream's separate step installs them
    "s-rustup-both": (
        [
            (
                'rustup target add --toolchain "${RUSTC_VERSION}" "${RUST_TARGET}";',
                'rustup target add --toolchain "${RUSTC_VERSION}" x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu;',
            )
        ],
        {"rustup-targets"},
    ),
    "s-env-removed": (
        [(ENV_BLOCK, "")],
        {"cargo-env"},
    ),
    "s-lto-default-fat": (
        [("ARG CARGO_PROFILE_RELEASE_LTO=false\n", "ARG CARGO_PROFILE_RELEASE_LTO=true\n")],
        {"knobs-declared"},
    ),
    # noglob dropped: a file named like the triple matches the pattern and passes as TARGETARCH's triple
    "s-glob-enabled": ([("set -euf;", "set -eu;")], {"targets-validated"}),
    # a final stage copies a per-arch path the builder does not produce
    "s-copy-wrong-path": (
        [
            (
                "nonroot\n\nCOPY --from=builder /usr/local/bin/mas-cli /usr/local/bin/mas-cli\n",
                "nonroot\n\nARG TARGETARCH\n"
                "COPY --from=builder /usr/local/bin/mas-cli-${TARGETARCH} /usr/local/bin/mas-cli\n",
            )
        ],
        {"move-step"},
    ),
}


@pytest.mark.parametrize("mutant", sorted(SINGLE_MUTANTS))
def test_v1_18_mutant_is_caught_by_the_right_check(
    confinement: Confinement, dockerfile_texts: DockerfileTexts, mutant: str
) -> None:
    edits, expected = SINGLE_MUTANTS[mutant]
    text = dockerfile_texts("v1.18.0")[1]
    for old, new in edits:
        text = mutate(text, old, new)
    assert failing(check_dockerfile(dfm.parse(text), shape="single", confinement=confinement)) == expected


def test_findings_point_at_the_line(confinement: Confinement, patched: str) -> None:
    text = mutate(patched, "ARG CARGO_BUILD_JOBS=2\n", "ARG CARGO_BUILD_JOBS=16\n")
    [bad] = [f for f in check_dockerfile(dfm.parse(text), confinement=confinement) if not f.ok]
    assert (bad.check, bad.line) == ("knobs-declared", 122)
    assert "'16'" in bad.message and "'2'" in bad.message

    text = mutate(patched, ENV_BLOCK, "")
    assert {(f.check, f.line) for f in check_dockerfile(dfm.parse(text), confinement=confinement) if not f.ok} == {
        ("cargo-env", 131)
    }  # the RUN, moved up

    text = mutate(patched, DPKG_RUN, "RUN rustup target add aarch64-unknown-linux-gnu\n\n" + DPKG_RUN)
    assert [(f.check, f.line) for f in check_dockerfile(dfm.parse(text), confinement=confinement) if not f.ok] == [
        ("rustup-targets", 81)
    ]


def test_knob_defaults_are_a_parameter(confinement: Confinement, patched: str) -> None:
    defaults = {**KNOB_DEFAULTS, "CARGO_BUILD_JOBS": "4"}
    assert failing(check_dockerfile(dfm.parse(patched), knob_defaults=defaults, confinement=confinement)) == {
        "knobs-declared"
    }


def test_unparsable_file_is_bad_input(confinement: Confinement) -> None:
    with pytest.raises(BadInput, match=r"broken\.Dockerfile: .*does not parse"):
        ParsedOnce()("FROM a\nENV x\n", name="broken.Dockerfile")
    with pytest.raises(DockerfileError, match="no stage named `builder`"):
        check_dockerfile(dfm.parse("FROM a\nRUN true\n"), confinement=confinement)


def test_shellcheck_flags_a_changed_run(dockerfile_texts: DockerfileTexts) -> None:
    pristine, patched = dockerfile_texts("v1.7.0")
    text = mutate(patched, 'for seen in "$@"; do', "for seen in $@; do")
    [bad] = [f for f in check_shellcheck(dfm.parse(pristine), dfm.parse(text)) if not f.ok]
    assert bad.line == 135 and "SC2068" in bad.message


def test_shellcheck_ignores_unchanged_runs(dockerfile_texts: DockerfileTexts) -> None:
    pristine, _ = dockerfile_texts("v1.7.0")
    # Upstream's own apt-get RUN has an SC2046 warning; an unchanged file has nothing to check.
    assert check_shellcheck(dfm.parse(pristine), dfm.parse(pristine)) == [
        Finding(check="shellcheck", ok=True, line=None, message="the patch adds or changes no RUN")
    ]


def test_hadolint_reports_only_new_findings(dockerfile_texts: DockerfileTexts) -> None:
    pristine, patched = dockerfile_texts("v1.7.0")
    text = mutate(patched, "WORKDIR /app\n", "WORKDIR app\n")
    bad = [f for f in check_hadolint_new_findings(pristine, text) if not f.ok]
    assert [(f.check, f.line) for f in bad] == [("hadolint-new-findings", 107)]
    assert bad[0].message.startswith("DL3000")


def test_missing_tool_is_an_environment_problem() -> None:
    with pytest.raises(EnvironmentProblem, match="no-such-linter"):
        tool_path("no-such-linter")
