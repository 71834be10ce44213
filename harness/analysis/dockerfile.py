"""Read a Dockerfile the way BuildKit does: stages, ARG/ENV, RUN scripts, COPY --from.

The parsing is done by the `dockerfile` package, which wraps BuildKit's own Go
parser (github.com/moby/buildkit/frontend/dockerfile/parser). We use it rather
than our own reading because it is the code BuildKit itself runs: it joins
backslash continuations and drops comment lines inside them exactly as a build
does, splits `RUN --network=... --mount=...` flags from the shell script, and
knows every instruction and stage. Nothing here looks at the raw file text; the
only "parsing" of our own is BuildKit's word expansion of ARG defaults and ENV
values (`$VAR`, `${VAR}`, `${VAR:-default}` ...), which the parser leaves to
the builder, and a shell-word tokenizer for RUN scripts (not for the file).
"""

from __future__ import annotations

import shlex
import threading
from dataclasses import dataclass
from pathlib import PurePosixPath

import dockerfile as _bk

from harness.errors import BadInput
from harness.knobs import BUILDER_STAGE


class DockerfileError(BadInput):
    """The Dockerfile cannot be parsed or lacks a part the harness needs."""


class DockerfileLimit(DockerfileError):
    """The Dockerfile is past a limit of what the harness reads (BuildKit might build it): it cannot be checked."""


# Instructions BuildKit knows; anything else is a build error there, so here too.
_KNOWN = frozenset(
    {
        *("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL"),
        *("MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"),
    }
)


@dataclass(frozen=True, kw_only=True)
class Instruction:
    cmd: str  # upper case, as BuildKit compares them
    flags: tuple[str, ...]
    value: tuple[str, ...]
    original: str
    start_line: int
    end_line: int
    json: bool
    heredoc: bool


@dataclass(frozen=True, kw_only=True)
class ArgDecl:
    name: str
    default: str | None  # unexpanded, None for `ARG NAME`
    line: int


@dataclass(frozen=True, kw_only=True)
class EnvSet:
    name: str
    value: str  # unexpanded, as written
    line: int


@dataclass(frozen=True, kw_only=True)
class RunStep:
    flags: tuple[str, ...]
    script: str  # the text BuildKit hands to `/bin/sh -c`, continuations joined
    start_line: int
    end_line: int
    exec_form: bool  # RUN ["a", "b"]: no shell, script is the argv joined
    heredoc: bool


@dataclass(frozen=True, kw_only=True)
class CopyFrom:
    source_stage: str
    sources: tuple[str, ...]  # unexpanded
    dest: str
    line: int


@dataclass(frozen=True, kw_only=True)
class Stage:
    index: int
    name: str | None
    base: str  # unexpanded image reference or earlier stage name
    line: int
    instructions: tuple[Instruction, ...]

    @property
    def args(self) -> tuple[ArgDecl, ...]:
        return tuple(a for i in self.instructions if i.cmd == "ARG" for a in arg_decls(i))

    @property
    def envs(self) -> tuple[EnvSet, ...]:
        return tuple(e for i in self.instructions if i.cmd == "ENV" for e in env_sets(i))

    @property
    def runs(self) -> tuple[RunStep, ...]:
        return tuple(_run_step(i) for i in self.instructions if i.cmd == "RUN")

    @property
    def copies_from(self) -> tuple[CopyFrom, ...]:
        found = []
        for i in self.instructions:
            if i.cmd not in ("COPY", "ADD"):
                continue
            source = next((f.split("=", 1)[1] for f in i.flags if f.startswith("--from=")), None)
            if source is not None and len(i.value) >= 2:
                found.append(CopyFrom(source_stage=source, sources=i.value[:-1], dest=i.value[-1], line=i.start_line))
        return tuple(found)

    def arg(self, name: str) -> ArgDecl | None:
        """The first declaration of `name` in this stage (the one that brings it into scope)."""
        return next((a for a in self.args if a.name == name), None)


@dataclass(frozen=True, kw_only=True)
class Dockerfile:
    global_args: tuple[ArgDecl, ...]  # ARGs before the first FROM
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name is not None and s.name.lower() == name.lower():
                return s
        raise DockerfileError(f"the Dockerfile has no stage named `{name}` (FROM ... AS {name})")

    @property
    def builder(self) -> Stage:
        return self.stage(BUILDER_STAGE)


def parse(text: str) -> Dockerfile:
    """Parse Dockerfile text with BuildKit's parser; DockerfileError if BuildKit would refuse it."""
    try:
        commands = _bk.parse_string(text)
    except _bk.GoParseError as e:
        raise DockerfileError(f"the Dockerfile does not parse: {e}") from e
    global_args: list[ArgDecl] = []
    stages: list[Stage] = []
    current: list[Instruction] = []
    head: Instruction | None = None

    def close() -> None:
        if head is None:
            return
        words = [w for w in head.value if w]
        name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
        if not words or len(words) not in (1, 3) or (len(words) == 3 and name is None):
            raise DockerfileError(f"line {head.start_line}: FROM is not `FROM image [AS name]`")
        stages.append(
            Stage(index=len(stages), name=name, base=words[0], line=head.start_line, instructions=tuple(current))
        )

    for c in commands:
        ins = Instruction(
            cmd=c.cmd.upper(),
            flags=tuple(c.flags),
            value=tuple(c.value),
            original=c.original,
            start_line=c.start_line,
            end_line=c.end_line,
            json=c.json,
            heredoc=bool(c.heredocs),
        )
        if ins.cmd not in _KNOWN:
            raise DockerfileError(f"line {ins.start_line}: unknown instruction `{c.cmd}`")
        if ins.cmd == "FROM":
            close()
            head, current = ins, []
        elif head is None:
            if ins.cmd != "ARG":
                raise DockerfileError(f"line {ins.start_line}: `{ins.cmd}` before the first FROM")
            global_args.extend(arg_decls(ins))
        else:
            current.append(ins)
    close()
    if not stages:
        raise DockerfileError("the Dockerfile has no FROM")
    return Dockerfile(global_args=tuple(global_args), stages=tuple(stages))


class ParsedOnce:
    """Each distinct Dockerfile text of one run parsed once: the semantic checks, the lint comparison with
    upstream's file and the checks of a suggested variant read the same files. Safe to share between the threads
    that check distinct files side by side; a file that does not parse is not kept (its error is raised again)."""

    def __init__(self) -> None:
        self._parsed: dict[str, Dockerfile] = {}
        self._lock = threading.Lock()

    def __call__(self, text: str, *, name: str = "Dockerfile") -> Dockerfile:
        """`text` parsed; a DockerfileError names the file as `name`."""
        with self._lock:
            if text not in self._parsed:
                try:
                    self._parsed[text] = parse(text)
                except DockerfileError as e:
                    raise type(e)(f"{name}: {e}") from e
            return self._parsed[text]


def arg_decls(ins: Instruction) -> list[ArgDecl]:
    decls = []
    for word in ins.value:
        name, eq, default = word.partition("=")
        decls.append(ArgDecl(name=name, default=default if eq else None, line=ins.start_line))
    return decls


def env_sets(ins: Instruction) -> list[EnvSet]:
    # The parser hands ENV over as name, value, name, value ... for both the
    # `ENV a=b c=d` and the legacy `ENV a b` forms.
    v = ins.value
    return [EnvSet(name=v[i], value=v[i + 1], line=ins.start_line) for i in range(0, len(v) - 1, 2)]


def _run_step(ins: Instruction) -> RunStep:
    return RunStep(
        flags=ins.flags,
        script=" ".join(ins.value),
        start_line=ins.start_line,
        end_line=ins.end_line,
        exec_form=ins.json,
        heredoc=ins.heredoc,
    )


# --- shell words of a RUN script ---------------------------------------------

_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", ";;", "\n"})
_PREFIX_WORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "exec"})


def simple_commands(script: str) -> list[list[str]]:
    """Split a shell script into its simple commands' words (quotes removed).

    Only good enough to *find* commands (`cargo auditable build`, `rustup
    target add`) and their literal arguments; the behaviour of a script is
    established by running it, not by this.
    """
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = ""  # `#` inside words (`$#`) must not start a comment
    try:
        tokens = list(lexer)
    except ValueError as e:
        raise DockerfileError(f"a RUN script does not tokenize as shell words: {e}") from e
    commands: list[list[str]] = []
    words: list[str] = []
    for tok in tokens:
        if tok in _SEPARATORS:
            if words:
                commands.append(words)
            words = []
        elif not words and (tok in _PREFIX_WORDS or _is_assignment(tok)):
            continue
        else:
            words.append(tok)
    if words:
        commands.append(words)
    return commands


def _is_assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and name.isidentifier()


def commands_of(run: RunStep, *prefix: str) -> list[list[str]]:
    """The simple commands of a RUN script whose first words are `prefix`."""
    n = len(prefix)
    return [w for w in simple_commands(run.script) if tuple(w[:n]) == prefix]


def find_build_run(stage: Stage) -> RunStep:
    """The one RUN of the stage that runs `cargo auditable build` (it also moves the binaries)."""
    found = [r for r in stage.runs if not r.exec_form and commands_of(r, "cargo", "auditable", "build")]
    if len(found) != 1:
        where = ", ".join(str(r.start_line) for r in found) or "none"
        raise DockerfileError(
            f"stage `{stage.name}` must have exactly one RUN with `cargo auditable build` (found: {where})"
        )
    if found[0].heredoc:
        raise DockerfileError(f"line {found[0].start_line}: the cargo build RUN uses a heredoc; not supported")
    return found[0]


def cache_mount_targets(run: RunStep) -> tuple[str, ...]:
    """Where the RUN's `--mount=type=cache,...` flags mount (unexpanded, as written)."""
    targets = []
    for flag in run.flags:
        if not flag.startswith("--mount="):
            continue
        fields = dict(part.partition("=")[::2] for part in flag.removeprefix("--mount=").split(","))
        target = fields.get("target") or fields.get("dst") or fields.get("destination")
        if fields.get("type") == "cache" and target:
            targets.append(target)
    return tuple(targets)


def workdir_at(stage: Stage, line: int) -> str:
    """The working directory an instruction of `stage` at `line` runs in (`/` before any WORKDIR)."""
    workdir = "/"
    for ins in stage.instructions:
        if ins.start_line >= line:
            break
        if ins.cmd == "WORKDIR" and ins.value:
            workdir = str(PurePosixPath(workdir, ins.value[0]))
    return workdir


def relative_to_workdir(path: str, workdir: str) -> str | None:
    """`path` (absolute, or relative to `workdir`) as a path inside `workdir`, or None if it is outside."""
    full = PurePosixPath(workdir, path)
    try:
        relative = full.relative_to(workdir)
    except ValueError:
        return None
    return None if ".." in relative.parts or not relative.parts else str(relative)
