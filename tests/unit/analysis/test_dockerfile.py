"""harness.analysis.dockerfile: the model built on BuildKit's parser, and the environment of a RUN."""

from __future__ import annotations

import pytest

from harness.analysis import dockerfile as dfm
from harness.analysis import environment
from harness.errors import BadInput
from tests.support import DockerfileTexts


@pytest.fixture(scope="session")
def patched(dockerfile_texts: DockerfileTexts) -> dfm.Dockerfile:
    return dfm.parse(dockerfile_texts("v1.7.0")[1])


def test_stages_and_builder(patched: dfm.Dockerfile) -> None:
    assert [s.name for s in patched.stages] == ["frontend", "policy", "builder", "share", "debug", None]
    builder = patched.builder
    assert builder.base == "docker.io/library/rust:${RUSTC_VERSION}-${DEBIAN_VERSION_NAME}"
    assert builder.line == 66
    assert [a.name for a in patched.global_args][:3] == ["DEBIAN_VERSION", "DEBIAN_VERSION_NAME", "RUSTC_VERSION"]
    assert patched.stage("BUILDER") is builder  # BuildKit compares stage names case-insensitively


def test_builder_args_envs_and_copies(patched: dfm.Dockerfile) -> None:
    builder = patched.builder
    jobs = builder.arg("CARGO_BUILD_JOBS")
    assert jobs == dfm.ArgDecl(name="CARGO_BUILD_JOBS", default="2", line=122)
    assert builder.arg("MAS_BUILD_TARGETS") == dfm.ArgDecl(name="MAS_BUILD_TARGETS", default="", line=125)
    assert builder.arg("RUSTC_VERSION") == dfm.ArgDecl(name="RUSTC_VERSION", default=None, line=69)
    env = {e.name: (e.value, e.line) for e in builder.envs}
    assert env["CARGO_PROFILE_RELEASE_LTO"] == ("${CARGO_PROFILE_RELEASE_LTO}", 127)
    assert env["SQLX_OFFLINE"] == ("true", 111)
    final = patched.stages[-1]
    assert [(c.source_stage, c.sources, c.dest, c.line) for c in final.copies_from] == [
        ("builder", ("/usr/local/bin/mas-cli-${TARGETARCH}",), "/usr/local/bin/mas-cli", 201),
        ("share", ("/share",), "/usr/local/share/mas-cli", 202),
    ]


def test_find_build_run_is_the_script_buildkit_runs(patched: dfm.Dockerfile) -> None:
    run = dfm.find_build_run(patched.builder)
    assert (run.start_line, run.end_line) == (135, 171)
    assert run.flags == (
        "--network=default",
        "--mount=type=cache,target=/root/.cargo/registry",
        "--mount=type=cache,target=/app/target",
    )
    assert run.script.startswith("set -euf;")
    assert "\\\n" not in run.script  # continuations joined, as BuildKit does
    assert run.script.endswith("done")


def test_find_build_run_on_upstream(dockerfile_texts: DockerfileTexts) -> None:
    df = dfm.parse(dockerfile_texts("v1.7.0")[0])
    run = dfm.find_build_run(df.builder)
    [cargo] = dfm.commands_of(run, "cargo", "auditable", "build")
    assert cargo[-4:] == ["--target", "x86_64-unknown-linux-gnu", "--target", "aarch64-unknown-linux-gnu"]
    assert [w[:2] for w in dfm.commands_of(run, "mv")] == [
        ["mv", "target/x86_64-unknown-linux-gnu/release/mas-cli"],
        ["mv", "target/aarch64-unknown-linux-gnu/release/mas-cli"],
    ]


def test_build_script_environment_defaults(patched: dfm.Dockerfile) -> None:
    env = environment.build_script_environment(patched, {}, targetarch="amd64")
    assert env["CARGO_BUILD_JOBS"] == "2"
    assert env["CARGO_PROFILE_RELEASE_LTO"] == "false"
    assert env["CARGO_PROFILE_RELEASE_CODEGEN_UNITS"] == "16"
    assert env["MAS_BUILD_TARGETS"] == ""
    assert env["TARGETARCH"] == "amd64"
    assert env["RUSTC_VERSION"] == "1.89.0"  # from the global ARG, declared without value in the stage
    assert env["BUILDPLATFORM"] == "linux/amd64"
    assert env["SQLX_OFFLINE"] == "true"
    assert env["VERGEN_GIT_DESCRIBE"] == ""
    assert "TARGETOS" not in env  # platform args are visible only once the stage declares them
    assert "DEBIAN_VERSION" not in env  # a global ARG the stage does not declare


def test_build_script_environment_build_args(patched: dfm.Dockerfile) -> None:
    env = environment.build_script_environment(
        patched,
        {
            "CARGO_BUILD_JOBS": "1",
            "MAS_BUILD_TARGETS": "aarch64-unknown-linux-gnu",
            "RUSTC_VERSION": "1.90.0",
            "UNDECLARED": "x",
        },
        targetarch="arm64",
    )
    assert env["CARGO_BUILD_JOBS"] == "1"
    assert env["MAS_BUILD_TARGETS"] == "aarch64-unknown-linux-gnu"
    assert env["RUSTC_VERSION"] == "1.90.0"
    assert env["TARGETARCH"] == "arm64"
    assert "UNDECLARED" not in env


def test_environment_order_follows_buildkit() -> None:
    df = dfm.parse(
        "ARG G=global\n"
        "FROM base AS builder\n"
        "ARG G\n"
        "ARG A=${G}-a\n"
        'ENV E="${A} and ${MISSING:-dflt}" F=${A:+set} H=$A\n'
        "ARG E=from-arg\n"
        "RUN cargo auditable build\n"
    )
    env = environment.build_script_environment(df, {}, targetarch="amd64")
    assert env == {"G": "global", "A": "global-a", "E": "from-arg", "F": "set", "H": "global-a"}
    given = environment.build_script_environment(df, {"G": "given", "E": "e"}, targetarch="amd64")
    assert given["A"] == "given-a" and given["E"] == "e"


def test_stage_inherits_env_of_parent_stage() -> None:
    df = dfm.parse("FROM base AS one\nENV X=1\nFROM one AS builder\nENV Y=${X}2\nRUN cargo auditable build\n")
    assert environment.build_script_environment(df, {}, targetarch="amd64") == {"X": "1", "Y": "12"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "a"),
        ("${A}", "a"),
        ("x${A}y$A", "xaya"),
        ("${U}", ""),
        ("${U:-d}", "d"),
        ("${E:-d}", "d"),
        ("${E-d}", ""),
        ("${A:-d}", "a"),
        ("${A:+alt}", "alt"),
        ("${E:+alt}", ""),
        ("${E+alt}", "alt"),
        ("${U:-${A}b}", "ab"),
        ("'$A'", "$A"),
        ('"$A b"', "a b"),
        ("\\$A", "$A"),
        ("a$", "a$"),
    ],
)
def test_expand(word: str, expected: str) -> None:
    assert environment.expand(word, {"A": "a", "E": ""}) == expected


@pytest.mark.parametrize("word", ["${", "${A", "${A%x}", "'open", '"open'])
def test_expand_refuses_what_it_does_not_know(word: str) -> None:
    with pytest.raises(dfm.DockerfileError):
        environment.expand(word, {"A": "a"})


def _nested(depth: int) -> str:
    word = "x"
    for _ in range(depth):
        word = "${U:-" + word + "}"
    return word


def test_expand_follows_nesting_up_to_the_limit() -> None:
    assert environment.expand(_nested(environment.MAX_NESTING), {}) == "x"


def test_expand_refuses_nesting_past_the_limit_in_a_short_line() -> None:
    with pytest.raises(dfm.DockerfileLimit, match=f"more than {environment.MAX_NESTING} deep") as refused:
        environment.expand(_nested(3000), {})
    assert "(18,001 characters)" in str(refused.value) and len(str(refused.value)) < 200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM a\nENV a\n", "does not parse"),
        ("FROM a\nFOO x\n", "unknown instruction"),
        ("RUN x\nFROM a\n", "before the first FROM"),
        ("# nothing\n", "does not parse"),
        ("ARG x\n", "no FROM"),
        ("FROM a AS b c\n", "FROM is not"),
    ],
)
def test_parse_errors_are_bad_input(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        dfm.parse(text)


def test_missing_builder_or_build_run() -> None:
    with pytest.raises(dfm.DockerfileError, match="no stage named `builder`"):
        _ = dfm.parse("FROM a AS other\n").builder
    two = dfm.parse("FROM a AS builder\nRUN cargo auditable build\nRUN x && cargo auditable build --release\n")
    with pytest.raises(dfm.DockerfileError, match=r"exactly one RUN .*found: 2, 3"):
        dfm.find_build_run(two.builder)
    with pytest.raises(dfm.DockerfileError, match="found: none"):
        dfm.find_build_run(dfm.parse("FROM a AS builder\nRUN echo cargo auditable build\n").builder)


def test_simple_commands() -> None:
    script = 'set -e; if [ -z "$X" ]; then A=1 cargo build --target "$T"; fi && rustup target add x || echo "a;b"'
    assert dfm.simple_commands(script) == [
        ["set", "-e"],
        ["[", "-z", "$X", "]"],
        ["cargo", "build", "--target", "$T"],
        ["fi"],
        ["rustup", "target", "add", "x"],
        ["echo", "a;b"],
    ]


def test_cache_mounts_and_workdir() -> None:
    df = dfm.parse(
        "FROM a AS builder\nWORKDIR /app\nWORKDIR sub\n"
        "RUN --network=none --mount=type=cache,target=/app/sub/target,sharing=locked "
        "--mount=type=bind,target=/src --mount=type=cache,dst=/root/.cargo true\n"
    )
    [run] = df.builder.runs
    assert dfm.cache_mount_targets(run) == ("/app/sub/target", "/root/.cargo")
    assert dfm.workdir_at(df.builder, run.start_line) == "/app/sub"
    assert dfm.workdir_at(df.builder, 2) == "/"
    assert dfm.relative_to_workdir("/app/sub/target", "/app/sub") == "target"
    assert dfm.relative_to_workdir("target", "/app") == "target"
    assert dfm.relative_to_workdir("/root/.cargo", "/app/sub") is None
    assert dfm.relative_to_workdir("/app", "/app") is None
