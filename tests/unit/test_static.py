"""harness.static: every check passes on the patched Dockerfiles and each hand-made mutant trips the right one."""

from __future__ import annotations

import pytest

from conftest import DockerfileTexts
from harness import static
from harness.dockerfile import DockerfileError
from harness.errors import BadInput, EnvironmentProblem
from harness.static import Finding, check_dockerfile, check_hadolint_new_findings, check_shellcheck

TAGS = ("v0.15.0", "v1.7.0", "v1.11.0", "v1.17.0")
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
def test_patched_dockerfiles_pass_every_check(dockerfile_texts: DockerfileTexts, tag: str) -> None:
    pristine, patched = dockerfile_texts(tag)
    findings = check_dockerfile(patched)
    assert {f.check for f in findings} == CHECKS
    assert failing(findings) == set(), [f for f in findings if not f.ok]
    lint = check_shellcheck(pristine, patched) + check_hadolint_new_findings(pristine, patched)
    assert [f for f in lint if not f.ok] == []
    assert {f.check for f in lint} == {"shellcheck", "hadolint-new-findings"}


def test_upstream_dockerfile_fails_the_checks(dockerfile_texts: DockerfileTexts) -> None:
    findings = check_dockerfile(dockerfile_texts("v1.7.0")[0], name="upstream")
    assert failing(findings) == {"knobs-declared", "cargo-env", "target-flags", "rustup-targets", "targets-validated"}


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


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_is_caught_by_the_right_check(patched: str, mutant: str) -> None:
    edits, expected = MUTANTS[mutant]
    text = patched
    for old, new in edits:
        text = mutate(text, old, new)
    assert failing(check_dockerfile(text)) == expected


def test_findings_point_at_the_line(patched: str) -> None:
    text = mutate(patched, "ARG CARGO_BUILD_JOBS=2\n", "ARG CARGO_BUILD_JOBS=16\n")
    [bad] = [f for f in check_dockerfile(text) if not f.ok]
    assert (bad.check, bad.line) == ("knobs-declared", 122)
    assert "'16'" in bad.message and "'2'" in bad.message

    text = mutate(patched, ENV_BLOCK, "")
    assert {(f.check, f.line) for f in check_dockerfile(text) if not f.ok} == {("cargo-env", 131)}  # the RUN, moved up

    text = mutate(patched, DPKG_RUN, "RUN rustup target add aarch64-unknown-linux-gnu\n\n" + DPKG_RUN)
    assert [(f.check, f.line) for f in check_dockerfile(text) if not f.ok] == [("rustup-targets", 81)]


def test_knob_defaults_are_a_parameter(patched: str) -> None:
    defaults = {**static.KNOB_DEFAULTS, "CARGO_BUILD_JOBS": "4"}
    assert failing(check_dockerfile(patched, knob_defaults=defaults)) == {"knobs-declared"}


def test_unparsable_file_is_bad_input() -> None:
    with pytest.raises(BadInput, match=r"broken\.Dockerfile: .*does not parse"):
        check_dockerfile("FROM a\nENV x\n", name="broken.Dockerfile")
    with pytest.raises(DockerfileError, match="no stage named `builder`"):
        check_dockerfile("FROM a\nRUN true\n")


def test_shellcheck_flags_a_changed_run(dockerfile_texts: DockerfileTexts) -> None:
    pristine, patched = dockerfile_texts("v1.7.0")
    text = mutate(patched, 'for seen in "$@"; do', "for seen in $@; do")
    [bad] = [f for f in check_shellcheck(pristine, text) if not f.ok]
    assert bad.line == 135 and "SC2068" in bad.message


def test_shellcheck_ignores_unchanged_runs(dockerfile_texts: DockerfileTexts) -> None:
    pristine, _ = dockerfile_texts("v1.7.0")
    # Upstream's own apt-get RUN has an SC2046 warning; an unchanged file has nothing to check.
    assert check_shellcheck(pristine, pristine) == [
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
        static.tool_path("no-such-linter")
