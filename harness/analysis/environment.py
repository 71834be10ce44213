"""BuildKit's word expansion, and the environment BuildKit gives an instruction (ARG, ENV, the platform args).

The parser (harness.analysis.dockerfile) leaves `$VAR`, `${VAR:-default}` ... to the
builder; this is that part of BuildKit (ProcessWord, dispatchArg, dispatchEnv).
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.analysis.dockerfile import (
    Dockerfile,
    DockerfileError,
    DockerfileLimit,
    Stage,
    arg_decls,
    env_sets,
    find_build_run,
)

MAX_NESTING = 100
"""How deep `${A:-${B:-...}}` may nest in one word. Real Dockerfiles nest two or three deep; BuildKit has no limit,
but a hostile tag's 3,000 levels must cost one ref an error, not the whole run its stack."""
_SHOWN = 60
"""How much of a word an error quotes: a hostile word can be a megabyte long."""


def expand(word: str, env: Mapping[str, str]) -> str:
    """BuildKit's ProcessWord for one word: quotes, backslashes and $-expansion.

    Supports `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`;
    an unset variable expands to the empty string, as in BuildKit.
    """
    out, _ = _expand(word, 0, env, stop="", depth=0)
    return out


def _shown(word: str) -> str:
    return repr(word) if len(word) <= _SHOWN else f"{word[:_SHOWN]!r}... ({len(word):,} characters)"


def _expand(word: str, i: int, env: Mapping[str, str], *, stop: str, depth: int) -> tuple[str, int]:
    out: list[str] = []
    in_double = False
    while i < len(word):
        ch = word[i]
        if not in_double and stop and ch == stop:
            return "".join(out), i
        if ch == "'" and not in_double:
            end = word.find("'", i + 1)
            if end < 0:
                raise DockerfileError(f"unmatched ' in {_shown(word)}")
            out.append(word[i + 1 : end])
            i = end + 1
        elif ch == '"':
            in_double = not in_double
            i += 1
        elif ch == "\\" and i + 1 < len(word):
            out.append(word[i + 1])
            i += 2
        elif ch == "$":
            value, i = _dollar(word, i + 1, env, depth=depth)
            out.append(value)
        else:
            out.append(ch)
            i += 1
    if in_double:
        raise DockerfileError(f'unmatched " in {_shown(word)}')
    if stop:
        raise DockerfileError(f"missing '{stop}' in {_shown(word)}")
    return "".join(out), i


def _dollar(word: str, i: int, env: Mapping[str, str], *, depth: int) -> tuple[str, int]:
    if i < len(word) and word[i] == "{":
        j = i + 1
        while j < len(word) and (word[j].isalnum() or word[j] == "_"):
            j += 1
        name = word[i + 1 : j]
        if not name:
            raise DockerfileError(f"bad substitution in {_shown(word)}")
        if j < len(word) and word[j] == "}":
            return env.get(name, ""), j + 1
        op = word[j : j + 2] if word[j : j + 1] == ":" else word[j : j + 1]
        if op not in (":-", "-", ":+", "+"):
            raise DockerfileError(f"unsupported substitution `${{{name}{word[j : j + 2]}...` in {_shown(word)}")
        if depth >= MAX_NESTING:
            raise DockerfileLimit(
                f"a word nests ${{...}} more than {MAX_NESTING} deep, past what the harness reads: {_shown(word)}"
            )
        alt, end = _expand(word, j + len(op), env, stop="}", depth=depth + 1)
        is_set = name in env and (env[name] != "" or not op.startswith(":"))
        if op.endswith("-"):
            return (env[name] if is_set else alt), end + 1
        return (alt if is_set else ""), end + 1
    j = i
    while j < len(word) and (word[j].isalnum() or word[j] == "_"):
        j += 1
    if j == i:
        return "$", i  # a lone `$` stays as it is
    return env.get(word[i:j], ""), j


def platform_args(*, targetarch: str, buildarch: str = "amd64") -> dict[str, str]:
    """The automatic platform build args BuildKit defines (visible once a stage declares them)."""
    return {
        "TARGETPLATFORM": f"linux/{targetarch}",
        "TARGETOS": "linux",
        "TARGETARCH": targetarch,
        "TARGETVARIANT": "",
        "BUILDPLATFORM": f"linux/{buildarch}",
        "BUILDOS": "linux",
        "BUILDARCH": buildarch,
        "BUILDVARIANT": "",
    }


def global_arg_values(df: Dockerfile, build_args: Mapping[str, str], *, targetarch: str) -> dict[str, str]:
    """Values of the ARGs declared before the first FROM (BuildKit's meta args)."""
    given = {**platform_args(targetarch=targetarch), **build_args}
    values: dict[str, str] = {}
    for a in df.global_args:
        if a.name in given:
            values[a.name] = given[a.name]
        elif a.default is not None:
            values[a.name] = expand(a.default, values)
    return values


def environment_at(
    df: Dockerfile,
    stage: Stage,
    line: int,
    build_args: Mapping[str, str],
    *,
    targetarch: str,
) -> dict[str, str]:
    """The environment BuildKit gives an instruction of `stage` starting at `line`.

    Follows BuildKit's dispatchArg/dispatchEnv in order: an ARG takes the given
    build arg, else its default (word-expanded), else the global ARG of that
    name; an ARG with a value is added to the build environment like an ENV
    (later instructions win). ENV values are word-expanded against what is set
    so far. The base image's own ENV (PATH, CARGO_HOME ...) is not known here,
    except ENV inherited from an earlier stage used as base.
    """
    given = {**platform_args(targetarch=targetarch), **build_args}
    meta = global_arg_values(df, build_args, targetarch=targetarch)
    env: dict[str, str] = {}
    parent = next((s for s in df.stages[: stage.index] if s.name and s.name.lower() == stage.base.lower()), None)
    if parent is not None:
        for e in parent.envs:
            env[e.name] = expand(e.value, env)
    for ins in stage.instructions:
        if ins.start_line >= line:
            break
        if ins.cmd == "ARG":
            for a in arg_decls(ins):
                if a.name in given:
                    env[a.name] = given[a.name]
                elif a.default is not None:
                    env[a.name] = expand(a.default, env)
                elif a.name in meta:
                    env[a.name] = meta[a.name]
        elif ins.cmd == "ENV":
            for e in env_sets(ins):
                env[e.name] = expand(e.value, env)
    return env


def build_script_environment(df: Dockerfile, build_args: Mapping[str, str], *, targetarch: str) -> dict[str, str]:
    """What BuildKit gives the builder stage's cargo build RUN as environment."""
    stage = df.builder
    return environment_at(df, stage, find_build_run(stage).start_line, build_args, targetarch=targetarch)
