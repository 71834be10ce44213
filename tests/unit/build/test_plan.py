"""What a build must leave in /usr/local/bin, by builder shape, what the final stage's plan replaces and ships, and
the cache mounts a profile run isolates (no Docker: the plan only)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from harness.analysis import dockerfile as dfm
from harness.analysis.patched import PatchedDockerfile
from harness.analysis.semantic import detect_shape
from harness.build import plan as plan_module
from harness.build.baseimage import LocalRustImage
from harness.build.plan import (
    TRACE_STAGE_LINES,
    TRACER_DEVIATIONS,
    TRACER_LINES,
    BuildPlan,
    PlanSource,
    add_tracer,
    base_image_need,
    isolate_cache_mounts,
    plan_build,
    plan_final,
    runtime_suite,
    shipped_binary,
)
from harness.build.runtimeimage import LocalRuntimeImage, debian_tag, runtime_tag
from harness.build.tracer import (
    SOURCE_CONTEXT,
    SOURCE_FILE,
    TRACE_DIR,
    TRACE_DIR_ENV,
    TRACE_STAGE,
    TRACER_CONTEXT,
    WRAPPER_PATH,
)
from harness.errors import BadInput
from harness.knobs import expected_binaries
from tests.support import DockerfileTexts, count_parses

X86 = "x86_64-unknown-linux-gnu"


ARM = "aarch64-unknown-linux-gnu"


def test_expected_binaries_by_shape() -> None:
    assert expected_binaries([X86, ARM], shape="per-arch") == ("mas-cli-amd64", "mas-cli-arm64")
    assert expected_binaries([X86], shape="single") == ("mas-cli",)


@pytest.mark.parametrize(("tag", "shape"), [("v0.14.0", "per-arch"), ("v1.17.0", "per-arch"), ("v1.19.0", "single")])
def test_a_plan_knows_the_shape_it_builds(
    dockerfile_texts: DockerfileTexts, tmp_path: Path, tag: str, shape: str
) -> None:
    plan = plan_build(
        PlanSource(
            ref=tag,
            patched=PatchedDockerfile.read(dockerfile_texts(tag)[1].encode()),
            context=tmp_path,
            source="standin",
            base_image=None,
        ),
        {"MAS_BUILD_TARGETS": X86},
        run_id="test",
    )
    assert plan.shape == shape


# -- the air-gapped builder plan -------------------------------------------------------------------------------------


def test_the_air_gapped_plan_says_what_it_changes(dockerfile_texts: DockerfileTexts, tmp_path: Path) -> None:
    patched = dockerfile_texts("v1.19.0")[1].encode()
    rust = LocalRustImage(tag="mas-harness/rust:1.95.0-trixie", rustc_version="1.95.0", suite="trixie", reused=True)
    plan = plan_build(
        PlanSource(
            ref="v1.19.0", patched=PatchedDockerfile.read(patched), context=tmp_path, source="standin", base_image=rust
        ),
        {"MAS_BUILD_TARGETS": X86},
        run_id="abc",
    )
    assert plan.air_gapped and (plan.stage, plan.target) == ("builder", "builder")
    assert patched.startswith(b"# syntax") and not plan.dockerfile.startswith(b"# syntax")
    assert plan.dockerfile == patched.partition(b"\n")[2], "the build copy is the patched file but for that line"
    assert plan.build_args == {
        "MAS_BUILD_TARGETS": X86,
        "VERGEN_GIT_DESCRIBE": "mas-harness-abc",
        "RUSTC_VERSION": "1.95.0",
    }
    assert plan.build_contexts == {
        "docker.io/library/rust:1.95.0-trixie": "docker-image://mas-harness/rust:1.95.0-trixie"
    }
    assert len(plan.deviations) == 3
    assert "RUSTC_VERSION 1.93.0 replaced by the local toolchain 1.95.0" in plan.deviations[2]
    assert plan.image_tag.startswith("mas-harness/builder:v1.19.0-")


def test_online_the_plan_keeps_the_syntax_line_and_upstreams_images(dockerfile_texts: DockerfileTexts) -> None:
    patched = dockerfile_texts("v1.19.0")[1].encode()
    plan = plan_build(
        PlanSource(
            ref="v1.19.0",
            patched=PatchedDockerfile.read(patched),
            context=Path("/nonexistent"),
            source="standin",
            base_image=None,
        ),
        {"VERGEN_GIT_DESCRIBE": "mine"},
        run_id="abc",
    )
    assert not plan.air_gapped
    assert (plan.dockerfile, plan.build_contexts, plan.deviations) == (patched, {}, ())
    assert plan.build_args == {"VERGEN_GIT_DESCRIBE": "mine"}, "a value the user gives is kept"


# -- the final stage: the air-gapped plan, and what the final stage ships -------------------------------------------

RUNTIME = {"bookworm": "12", "trixie": "13"}


def _plan(dockerfile_texts: DockerfileTexts, tag: str, tmp_path: Path, **build_args: str) -> BuildPlan:
    return plan_build(
        PlanSource(
            ref=tag,
            patched=PatchedDockerfile.read(dockerfile_texts(tag)[1].encode()),
            context=tmp_path,
            source="standin",
            base_image=LocalRustImage(
                tag="mas-harness/rust:1.95.0-trixie", rustc_version="1.95.0", suite="trixie", reused=True
            ),
        ),
        {"MAS_BUILD_TARGETS": X86, **build_args},
        run_id="test",
    )


@pytest.mark.parametrize(
    ("tag", "suite", "shipped"),
    [
        ("v0.14.0", "bookworm", "/usr/local/bin/mas-cli-amd64"),
        ("v1.17.0", "trixie", "/usr/local/bin/mas-cli-amd64"),
        ("v1.19.0", "trixie", "/usr/local/bin/mas-cli"),
    ],
)
def test_the_air_gapped_final_plan_names_every_stand_in(
    dockerfile_texts: DockerfileTexts, tmp_path: Path, tag: str, suite: str, shipped: str
) -> None:
    patched = dockerfile_texts(tag)[1].encode()
    assert runtime_suite(dfm.parse(patched.decode()), {}) == suite
    builder = _plan(dockerfile_texts, tag, tmp_path)
    runtime = LocalRuntimeImage(tag=runtime_tag(suite), debian_tag=debian_tag(suite), suite=suite, reused=True)
    stand_ins = tmp_path / "standin-stages"

    final = plan_final(builder, runtime_image=runtime, stage_stand_ins=stand_ins)

    assert (final.stage, final.target) == ("final", None), "buildx builds the last stage"
    assert final.image_tag.startswith("mas-harness/mas:") and final.image_tag != builder.image_tag
    assert final.dockerfile == builder.dockerfile and final.build_args == builder.build_args, "same inputs: cached"
    release = RUNTIME[suite]
    assert final.build_contexts == {
        **builder.build_contexts,
        "frontend": stand_ins / "frontend",
        "policy": stand_ins / "policy",
        f"gcr.io/distroless/cc-debian{release}:nonroot": f"docker-image://mas-harness/distroless-cc:debian{release}",
        f"gcr.io/distroless/cc-debian{release}:debug-nonroot": f"docker-image://mas-harness/distroless-cc:debian{release}",
    }
    added = final.deviations[len(builder.deviations) :]
    assert final.deviations[: len(builder.deviations)] == builder.deviations
    assert len(added) == 4, "each stand-in is a deviation of its own"
    assert any("stage `policy` not built" in d and "test double" in d for d in added)
    assert shipped_binary(final) == shipped


def test_online_the_final_plan_replaces_only_what_the_standin_source_cannot_build(
    dockerfile_texts: DockerfileTexts, tmp_path: Path
) -> None:
    builder = _plan(dockerfile_texts, "v1.19.0", tmp_path)
    final = plan_final(builder, runtime_image=None, stage_stand_ins=tmp_path)
    assert set(final.build_contexts) - set(builder.build_contexts) == {"frontend", "policy"}
    assert plan_final(builder, runtime_image=None, stage_stand_ins=None).build_contexts == builder.build_contexts


def test_a_runtime_image_of_another_debian_release_is_refused(
    dockerfile_texts: DockerfileTexts, tmp_path: Path
) -> None:
    builder = _plan(dockerfile_texts, "v1.19.0", tmp_path)  # distroless cc-debian13
    bookworm = LocalRuntimeImage(
        tag=runtime_tag("bookworm"), debian_tag=debian_tag("bookworm"), suite="bookworm", reused=True
    )
    with pytest.raises(BadInput, match=re.escape("cannot stand in for gcr.io/distroless/cc-debian13")):
        plan_final(builder, runtime_image=bookworm, stage_stand_ins=None)


def test_the_runtime_suite_follows_the_debian_version_build_arg(dockerfile_texts: DockerfileTexts) -> None:
    patched = dockerfile_texts("v1.19.0")[1].encode()
    assert runtime_suite(dfm.parse(patched.decode()), {"DEBIAN_VERSION": "12"}) == "bookworm"
    with pytest.raises(BadInput, match=re.escape("runtime base gcr.io/distroless/cc-debian14")):
        runtime_suite(dfm.parse(patched.decode()), {"DEBIAN_VERSION": "14"})


def test_the_per_arch_final_stage_ships_the_targetarch_binary(
    dockerfile_texts: DockerfileTexts, tmp_path: Path
) -> None:
    plan = _plan(dockerfile_texts, "v1.17.0", tmp_path, MAS_BUILD_TARGETS=f"{ARM} {X86}")
    assert shipped_binary(plan) == "/usr/local/bin/mas-cli-amd64", "TARGETARCH amd64, whatever else was built"


# -- cold target directory ------------------------------------------------------------------------


def test_target_cache_mounts_get_their_own_id_and_nothing_else_changes() -> None:
    dockerfile = (
        b"RUN --network=default \\\n"
        b"  --mount=type=cache,target=/root/.cargo/registry \\\n"
        b"  --mount=type=cache,target=/app/target \\\n"
        b"  cargo build\n"
        b"RUN --mount=type=cache,id=mine,target=/app/target true\n"
    )
    isolated = isolate_cache_mounts(dockerfile, namespace="ns1")
    assert isolated == dockerfile.replace(
        b"--mount=type=cache,target=/app/target ", b"--mount=type=cache,target=/app/target,id=ns1/app/target "
    )
    assert b"target=/root/.cargo/registry \\" in isolated, "the registry cache stays shared (may be warm)"
    assert b"id=mine,target=/app/target true" in isolated, "an id the Dockerfile chose is left alone"


# -- the traced build copy ------------------------------------------------------------------------------------------


def _traced(dockerfile_texts: DockerfileTexts, tag: str, tmp_path: Path) -> tuple[BuildPlan, BuildPlan]:
    """The same build planned without and with the tracer."""
    rust = LocalRustImage(tag="mas-harness/rust:1.95.0-trixie", rustc_version="1.95.0", suite="trixie", reused=True)
    plain, traced = (
        plan_build(
            PlanSource(
                ref=tag,
                patched=PatchedDockerfile.read(dockerfile_texts(tag)[1].encode()),
                context=tmp_path,
                source="standin",
                base_image=rust,
            ),
            {"MAS_BUILD_TARGETS": X86},
            run_id="abc",
            tracer=tracer,
        )
        for tracer in (None, SOURCE_CONTEXT)
    )
    return plain, traced


@pytest.mark.parametrize("tag", ["v0.14.0", "v1.17.0", "v1.19.0"])
def test_a_traced_build_copy_runs_cargo_under_the_wrapper_and_adds_only_the_tracer(
    dockerfile_texts: DockerfileTexts, tmp_path: Path, tag: str
) -> None:
    plain, traced = _traced(dockerfile_texts, tag, tmp_path)
    assert traced.traced and not plain.traced
    parsed = dfm.parse(traced.dockerfile.decode())
    builder = parsed.builder
    build_run = dfm.find_build_run(builder)
    before = [i for i in builder.instructions if i.start_line < build_run.start_line]
    assert [i.cmd for i in before[-3:]] == ["COPY", "RUN", "ENV"], "the wrapper comes just before the build RUN"
    env = {e.name: e.value for e in builder.envs}
    assert (env["RUSTC_WRAPPER"], env[TRACE_DIR_ENV]) == (WRAPPER_PATH, TRACE_DIR)
    copy = next(c for c in builder.copies_from if c.source_stage == TRACER_CONTEXT)
    assert copy.sources == (SOURCE_FILE,)
    # The records' stage follows the builder stage; the last stage is still the image users ship.
    names = [stage.name for stage in parsed.stages]
    assert names[names.index("builder") + 1] == TRACE_STAGE
    assert parsed.stages[-1].base == dfm.parse(plain.dockerfile.decode()).stages[-1].base
    assert shipped_binary(traced) == shipped_binary(plain)
    assert traced.shape == plain.shape
    trace_stage = parsed.stage(TRACE_STAGE)
    assert (trace_stage.base, [(c.source_stage, c.sources, c.dest) for c in trace_stage.copies_from]) == (
        "scratch",
        [("builder", (f"{TRACE_DIR}/",), "/")],
    )
    # Nothing else changes: taking the added lines out gives the untraced build copy back.
    added = {line.encode() for line in (*TRACER_LINES, *TRACE_STAGE_LINES) if line}
    kept = [line for line in traced.dockerfile.split(b"\n") if line not in added]
    assert [line for line in kept if line] == [line for line in plain.dockerfile.split(b"\n") if line]


def test_a_traced_plan_names_the_tracer_in_its_contexts_and_deviations(
    dockerfile_texts: DockerfileTexts, tmp_path: Path
) -> None:
    plain, traced = _traced(dockerfile_texts, "v1.19.0", tmp_path)
    assert traced.build_contexts == {**plain.build_contexts, TRACER_CONTEXT: SOURCE_CONTEXT}
    assert traced.deviations == (*plain.deviations, *TRACER_DEVIATIONS)
    assert traced.build_args == plain.build_args
    final = plan_final(traced, runtime_image=None, stage_stand_ins=None)
    assert final.traced and final.build_contexts[TRACER_CONTEXT] == SOURCE_CONTEXT
    assert final.target is None, "the final build still builds the last stage"


def test_a_dockerfile_that_has_the_trace_stage_already_is_refused(
    dockerfile_texts: DockerfileTexts, tmp_path: Path
) -> None:
    patched = dockerfile_texts("v1.19.0")[1] + f"\nFROM scratch AS {TRACE_STAGE}\n"
    with pytest.raises(BadInput, match=f"already has a stage named {TRACE_STAGE}"):
        add_tracer(patched.encode(), dfm.parse(patched))


# -- each Dockerfile parsed once -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["v1.17.0", "v1.19.0"])
def test_a_traced_air_gapped_final_build_parses_its_dockerfile_once(
    dockerfile_texts: DockerfileTexts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tag: str
) -> None:
    parses = count_parses(monkeypatch)
    patched = PatchedDockerfile.read(dockerfile_texts(tag)[1].encode())
    # What prepare reads (which base images), then the plans and what the checks read of them.
    need = base_image_need(patched.parsed, {})
    suite = runtime_suite(patched.parsed, {})
    assert suite is not None
    rust = LocalRustImage(
        tag=f"mas-harness/rust:1.95.0-{need.suite}", rustc_version="1.95.0", suite=need.suite, reused=True
    )
    runtime = LocalRuntimeImage(tag=runtime_tag(suite), debian_tag=debian_tag(suite), suite=suite, reused=True)
    builder = plan_build(
        PlanSource(ref=tag, patched=patched, context=tmp_path, source="standin", base_image=rust),
        {"MAS_BUILD_TARGETS": X86},
        run_id="once",
        cache_namespace="mas-harness-build-once",
        tracer=SOURCE_CONTEXT,
    )
    final = plan_final(builder, runtime_image=runtime, stage_stand_ins=tmp_path / "standin-stages")
    shipped = shipped_binary(final)
    assert list(parses.values()) == [1], "parsed when read, never again"

    # The parsed form the plans carry says what the build copy itself says.
    copy = dfm.parse(final.dockerfile.decode())
    assert [s.name for s in copy.stages if s.name != TRACE_STAGE] == [s.name for s in final.parsed.stages]
    assert shipped == shipped_binary(dataclasses.replace(final, parsed=copy))
    assert final.shape == detect_shape(copy)


def test_the_build_layer_takes_its_dockerfiles_parsed() -> None:
    # A parse in build/ would read again what the analysis layer parsed when the patch was applied.
    build_layer = Path(plan_module.__file__).parent
    parsing = [
        f"{path.name}:{number}"
        for path in sorted(build_layer.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\b(dfm|dockerfile)\.parse\(", line)
    ]
    assert parsing == []
