"""The patched cargo build RUN script, executed under sh with the cargo/rustup test doubles."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analysis import dockerfile as dfm
from harness.analysis.sandbox import Sandbox, ScriptRun, run_build_script
from tests.support import DockerfileTexts

X86 = "x86_64-unknown-linux-gnu"
ARM = "aarch64-unknown-linux-gnu"
CARGO_ARGV = (
    "auditable",
    "build",
    "--locked",
    "--release",
    "--bin",
    "mas-cli",
    "--no-default-features",
    "--features",
    "docker",
)


@pytest.fixture(scope="session")
def df(dockerfile_texts: DockerfileTexts) -> dfm.Dockerfile:
    return dfm.parse(dockerfile_texts("v1.7.0")[1])


def built(triple: str) -> str:
    return f"mas-cli built for {triple}\n"


def assert_built(result: ScriptRun, triples: list[str], *, toolchain: str = "1.89.0") -> None:
    assert result.returncode == 0, result.stderr
    assert [c.tool for c in result.calls] == ["rustup", "cargo"]
    rustup, cargo = result.calls
    assert rustup.argv == ("target", "add", "--toolchain", toolchain, *triples)
    assert cargo.argv == (*CARGO_ARGV, *(w for t in triples for w in ("--target", t)))
    arch = {X86: "amd64", ARM: "arm64"}
    assert dict(result.installed) == {f"mas-cli-{arch[t]}": built(t) for t in triples}
    assert result.left_in_target == ()  # moved, not copied
    assert result.new_files_in_workdir == ()


@pytest.mark.parametrize(
    ("targets", "targetarch", "expected"),
    [
        (X86, "amd64", [X86]),
        (X86, "arm64", [X86]),  # an explicit list wins over TARGETARCH
        (ARM, "amd64", [ARM]),
        (f"{X86} {ARM}", "amd64", [X86, ARM]),
        (f"  {ARM}\t{X86} ", "arm64", [ARM, X86]),  # split into words, order kept
        ("", "amd64", [X86]),
        ("", "arm64", [ARM]),
    ],
)
def test_builds_and_moves_the_requested_targets(
    sandbox: Sandbox, df: dfm.Dockerfile, targets: str, targetarch: str, expected: list[str]
) -> None:
    assert_built(run_build_script(df, {"MAS_BUILD_TARGETS": targets}, targetarch=targetarch, sandbox=sandbox), expected)


def test_default_build_args_are_optional(sandbox: Sandbox, df: dfm.Dockerfile) -> None:
    assert_built(run_build_script(df, {}, targetarch="arm64", sandbox=sandbox), [ARM])


def test_cargo_sees_the_knobs(sandbox: Sandbox, df: dfm.Dockerfile) -> None:
    result = run_build_script(
        df,
        {
            "MAS_BUILD_TARGETS": X86,
            "CARGO_BUILD_JOBS": "1",
            "CARGO_PROFILE_RELEASE_LTO": "false",
            "RUSTC_VERSION": "1.90.0",
        },
        targetarch="amd64",
        sandbox=sandbox,
    )
    assert_built(result, [X86], toolchain="1.90.0")
    env = result.calls[1].env
    assert env["CARGO_BUILD_JOBS"] == "1"
    assert env["CARGO_PROFILE_RELEASE_LTO"] == "false"
    assert env["CARGO_PROFILE_RELEASE_CODEGEN_UNITS"] == "16"  # the default
    assert env["SQLX_OFFLINE"] == "true"


def test_defaults_reach_cargo(sandbox: Sandbox, df: dfm.Dockerfile) -> None:
    env = run_build_script(df, {}, targetarch="amd64", sandbox=sandbox).calls[1].env
    assert (env["CARGO_BUILD_JOBS"], env["CARGO_PROFILE_RELEASE_LTO"], env["CARGO_PROFILE_RELEASE_CODEGEN_UNITS"]) == (
        "2",
        "false",
        "16",
    )


def test_callers_environment_does_not_leak(
    sandbox: Sandbox, df: dfm.Dockerfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAS_BUILD_TARGETS", "bogus")
    monkeypatch.setenv("CARGO_BUILD_JOBS", "99")
    result = run_build_script(df, {}, targetarch="amd64", sandbox=sandbox)
    assert_built(result, [X86])
    assert result.calls[1].env["CARGO_BUILD_JOBS"] == "2"


def assert_refused(result: ScriptRun, *, decoys: tuple[str, ...] = ()) -> str:
    """Non-zero, before rustup or cargo, one stderr line naming MAS_BUILD_TARGETS, no side effect."""
    assert result.returncode != 0
    assert result.calls == ()
    assert dict(result.installed) == {}
    assert result.left_in_target == ()
    assert result.new_files_in_workdir == ()
    [line] = result.stderr.strip().splitlines()
    assert "MAS_BUILD_TARGETS" in line
    return line


@pytest.mark.parametrize(
    ("targets", "says"),
    [
        ("riscv64gc-unknown-linux-gnu", "unsupported target 'riscv64gc-unknown-linux-gnu'"),
        (f"{X86} armv7-unknown-linux-gnueabihf", "unsupported target 'armv7-unknown-linux-gnueabihf'"),
        ("x86_64", "unsupported target 'x86_64'"),
        (f"{X86} {X86}", f"duplicated target '{X86}'"),
        (f"{ARM} {X86} {ARM}", f"duplicated target '{ARM}'"),
    ],
)
def test_bad_targets_are_refused_first(sandbox: Sandbox, df: dfm.Dockerfile, targets: str, says: str) -> None:
    line = assert_refused(run_build_script(df, {"MAS_BUILD_TARGETS": targets}, targetarch="amd64", sandbox=sandbox))
    assert says in line


@pytest.mark.parametrize(
    "form",
    [
        "{t};touch {p}",
        "{t} ;touch {p}",
        "$(touch {p})",
        "`touch {p}`",
        "{t}&&touch {p}",
        "{t}|touch {p}",
        "{t}\ntouch {p}",
    ],
)
def test_targets_are_never_evaluated(sandbox: Sandbox, df: dfm.Dockerfile, tmp_path: Path, form: str) -> None:
    pwned = tmp_path / "pwned"
    targets = form.format(t=X86, p=pwned)
    assert_refused(run_build_script(df, {"MAS_BUILD_TARGETS": targets}, targetarch="amd64", sandbox=sandbox))
    assert not pwned.exists()


@pytest.mark.parametrize("pattern", ["*", "x86_64-*", "?86_64-unknown-linux-gnu", "[x]86_64-unknown-linux-gnu"])
def test_targets_are_not_globbed(sandbox: Sandbox, df: dfm.Dockerfile, pattern: str) -> None:
    # A file named like a triple in the working directory: globbing would turn the pattern into a valid target.
    result = run_build_script(
        df, {"MAS_BUILD_TARGETS": pattern}, targetarch="amd64", workdir_files=(X86,), sandbox=sandbox
    )
    assert f"'{pattern}'" in assert_refused(result)


def test_empty_targets_need_a_known_targetarch(sandbox: Sandbox, df: dfm.Dockerfile) -> None:
    line = assert_refused(run_build_script(df, {}, targetarch="riscv64", sandbox=sandbox))
    assert "TARGETARCH 'riscv64'" in line


def test_upstream_script_runs_too(sandbox: Sandbox, dockerfile_texts: DockerfileTexts) -> None:
    """The runner is not tied to the patch: upstream's script builds and moves both targets."""
    text = dockerfile_texts("v1.7.0")[0]
    result = run_build_script(dfm.parse(text), {"MAS_BUILD_TARGETS": "ignored"}, targetarch="amd64", sandbox=sandbox)
    assert result.returncode == 0
    assert [c.tool for c in result.calls] == ["cargo"]
    assert set(result.installed) == {"mas-cli-amd64", "mas-cli-arm64"}


# --- the v1.18+ shape: one binary, /usr/local/bin/mas-cli, for TARGETARCH ---------------------------


@pytest.fixture(scope="session")
def single(dockerfile_texts: DockerfileTexts) -> dfm.Dockerfile:
    return dfm.parse(dockerfile_texts("v1.18.0")[1])


@pytest.mark.parametrize(
    ("targets", "targetarch", "triple"),
    [("", "amd64", X86), ("", "arm64", ARM), (X86, "amd64", X86), (f"  {ARM} ", "arm64", ARM)],
)
def test_single_shape_builds_the_targetarch_target(
    sandbox: Sandbox, single: dfm.Dockerfile, targets: str, targetarch: str, triple: str
) -> None:
    result = run_build_script(single, {"MAS_BUILD_TARGETS": targets}, targetarch=targetarch, sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    rustup, cargo = result.calls
    assert rustup.argv == ("target", "add", "--toolchain", "1.93.0", triple)
    assert cargo.argv == (*CARGO_ARGV, "--target", triple)
    assert dict(result.installed) == {"mas-cli": built(triple)}
    assert result.left_in_target == ()


@pytest.mark.parametrize(
    ("targets", "says"),
    [
        (ARM, f"'{ARM}' is not {X86}, the target of TARGETARCH 'amd64'"),
        (f"{X86} {ARM}", "more than one target"),
        (f"{X86} {X86}", "more than one target"),
        ("riscv64gc-unknown-linux-gnu", "'riscv64gc-unknown-linux-gnu' is not"),
        (f"{X86};touch pwned", "is not"),
    ],
)
def test_single_shape_refuses_anything_but_the_targetarch_triple(
    sandbox: Sandbox, single: dfm.Dockerfile, targets: str, says: str
) -> None:
    line = assert_refused(run_build_script(single, {"MAS_BUILD_TARGETS": targets}, targetarch="amd64", sandbox=sandbox))
    assert says in line


def test_single_shape_refuses_an_unknown_targetarch(sandbox: Sandbox, single: dfm.Dockerfile) -> None:
    line = assert_refused(run_build_script(single, {}, targetarch="riscv64", sandbox=sandbox))
    assert "TARGETARCH 'riscv64'" in line


# --- later move steps and cache mounts ----------------------------------------------------------------


def test_upstream_v0_14_moves_in_separate_steps(sandbox: Sandbox, dockerfile_texts: DockerfileTexts) -> None:
    df = dfm.parse(dockerfile_texts("v0.14.0")[0])
    result = run_build_script(df, {}, targetarch="amd64", sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    assert result.steps == (116, 127, 129)  # the build RUN, then upstream's two `RUN --network=none mv`
    assert set(result.installed) == {"mas-cli-amd64", "mas-cli-arm64"}


BUILD = "cargo auditable build --release --target x86_64-unknown-linux-gnu"
MOVE = "mv target/x86_64-unknown-linux-gnu/release/mas-cli /usr/local/bin/mas-cli-amd64"


@pytest.mark.parametrize(
    ("build_flags", "move_flags", "moved"),
    [
        ("", "", True),  # target/ is in the layer: the later step finds the binary
        ("--mount=type=cache,target=/app/target ", "", False),  # a cache mount is not in the layer
        ("--mount=type=cache,target=target ", "--mount=type=cache,target=/app/target ", True),  # same cache, mounted
        ("--mount=type=cache,target=/root/.cargo/registry ", "", True),  # outside the workdir: not modelled
    ],
)
def test_a_later_step_sees_target_only_outside_a_cache_mount(
    sandbox: Sandbox, build_flags: str, move_flags: str, moved: bool
) -> None:
    df = dfm.parse(
        f"FROM base AS builder\nWORKDIR /app\nRUN {build_flags}{BUILD}\nRUN --network=none {move_flags}{MOVE}\n"
    )
    result = run_build_script(df, {}, targetarch="amd64", sandbox=sandbox)
    assert result.steps == (3, 4)
    if moved:
        assert (result.returncode, dict(result.installed)) == (0, {"mas-cli-amd64": built(X86)})
        assert result.left_in_target == ()
    else:
        assert (result.returncode, result.failed_line, dict(result.installed)) == (1, 4, {})
        assert "cannot stat" in result.stderr
        assert result.left_in_target == ("target/x86_64-unknown-linux-gnu/release/mas-cli",)  # in the cache


def test_a_failing_build_step_stops_the_run(sandbox: Sandbox) -> None:
    df = dfm.parse(f"FROM base AS builder\nWORKDIR /app\nRUN {BUILD} && false\nRUN {MOVE}\n")
    result = run_build_script(df, {}, targetarch="amd64", sandbox=sandbox)
    assert (result.returncode, result.failed_line, dict(result.installed)) == (1, 3, {})
