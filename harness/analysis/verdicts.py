"""Static verdicts kept by content: the findings of the static checks, computed once per distinct input.

The static checks of a patched Dockerfile are a pure function of the pristine and the
patched Dockerfile's bytes, the builder-stage shape, the harness's version (with a
digest of the code the checks run) and the versions of shellcheck and hadolint: the 30
pinned releases have 9 distinct Dockerfiles, and a rerun changes none of them. So the
findings are stored under the harness's cache directory (`verdicts/`), named by a
digest of all of those, the way the checkout cache is kept: looked up without a lock;
on a miss, under a file lock per entry, looked up again (another run may have just
computed it), computed, and published all at once.

An entry names its inputs and carries a digest of its findings: one that does not read
back whole (truncated, edited, written by another format) is recomputed and replaced,
never trusted. A new harness or tool version reads other names, so it never sees
verdicts it did not compute.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TypeVar

from filelock import FileLock

from harness import __version__
from harness.analysis.findings import Finding
from harness.analysis.lint import tool_path
from harness.files import atomic_write
from harness.proc import run

log = logging.getLogger("harness")

VERDICTS = "verdicts"
"""The store's directory under the harness's cache directory."""
FORMAT = 1
"""The layout of an entry; another layout is not read."""
LINT_TOOLS = ("shellcheck", "hadolint")
T = TypeVar("T")


# The code the static checks run: a harness installed from a commit between two releases keeps its version
# number, so the version alone would hand it verdicts of other checks.
_CHECKS_CODE = (
    *(
        f"analysis/{name}.py"
        for name in ("static", "semantic", "sandbox", "confine", "scenarios", "lint", "dockerfile")
    ),
    *("analysis/environment.py", "analysis/findings.py", "analysis/doubles/tool_double.sh", "knobs.py"),
)


def checks_version() -> str:
    """The harness's version and a digest of the code its static checks run (just the version if it cannot be read)."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    try:
        for relative in _CHECKS_CODE:
            digest.update((package / relative).read_bytes())
    except OSError:
        return __version__
    return f"{__version__}+checks.{digest.hexdigest()[:16]}"


def tool_versions() -> dict[str, str]:
    """What shellcheck and hadolint say of their version, as they say it (any change is a new version)."""
    return {name: run(tool_path(name), "--version").stdout.decode(errors="replace").strip() for name in LINT_TOOLS}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, kw_only=True)
class VerdictKey:
    """Everything the findings depend on; its digest names the entry."""

    pristine: str | None
    """sha256 of the pristine Dockerfile; None when there is none (then no lint runs)."""
    patched: str
    """sha256 of the patched Dockerfile."""
    shape: str | None
    scripts: str
    """How the build script ran: `confined` or `unconfined` (a script may behave otherwise when it can see out)."""
    harness: str
    tools: Mapping[str, str]
    """Each lint tool's version; empty without a pristine file, when no lint runs."""

    def document(self) -> dict[str, object]:
        return {**asdict(self), "tools": dict(sorted(self.tools.items()))}

    @property
    def digest(self) -> str:
        return _sha256(json.dumps(self.document(), sort_keys=True).encode())


def _findings_json(findings: list[Finding]) -> list[dict[str, object]]:
    return [asdict(finding) for finding in findings]


def _findings_digest(findings: list[dict[str, object]]) -> str:
    return _sha256(json.dumps(findings, sort_keys=True).encode())


def _finding(raw: object) -> Finding | None:
    """A finding as `_findings_json` wrote it (every field of Finding, no other), else None."""
    if not isinstance(raw, dict) or set(raw) != {f.name for f in fields(Finding)}:
        return None
    check, ok, line, message = raw["check"], raw["ok"], raw["line"], raw["message"]
    if not (isinstance(check, str) and isinstance(ok, bool) and isinstance(message, str)):
        return None
    if line is not None and (not isinstance(line, int) or isinstance(line, bool)):
        return None
    return Finding(**raw)


def _entry_findings(data: bytes, key: VerdictKey) -> list[Finding] | None:
    """The findings of a stored entry, or None for anything but a whole entry for exactly `key`."""
    try:
        entry = json.loads(data)
    except ValueError:
        return None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != key.document():
        return None
    raw = entry.get("findings")
    if not isinstance(raw, list) or entry.get("digest") != _findings_digest(raw):
        return None
    findings = [_finding(item) for item in raw]
    return [f for f in findings if f is not None] if all(f is not None for f in findings) else None


class VerdictCache:
    """The store of one run: where it is, whether to reuse what it holds, and how much it saved.

    With `reuse` off (`--no-cache`) every verdict is computed again, and stored, replacing
    the old one. `harness_version` and `versions` (the lint tools') are the run's own unless
    given: a test gives other ones to see that they lead elsewhere.
    """

    def __init__(
        self,
        root: Path,
        *,
        reuse: bool = True,
        harness_version: str | None = None,
        versions: Callable[[], Mapping[str, str]] = tool_versions,
    ) -> None:
        self.root = root
        self.reuse = reuse
        self.harness_version = harness_version if harness_version is not None else checks_version()
        self._versions = versions
        self._tools: Mapping[str, str] | None = None
        self._guard = threading.Lock()
        self.computed = 0
        """Verdicts this run computed (a miss, a corrupt entry, or `reuse` off)."""
        self.reused = 0
        """Verdicts this run read back instead of computing them."""

    @classmethod
    def in_cache_dir(cls, cache_dir: Path, *, reuse: bool = True) -> VerdictCache:
        return cls(cache_dir / VERDICTS, reuse=reuse)

    def _tool_versions(self) -> Mapping[str, str]:
        with self._guard:
            if self._tools is None:
                self._tools = dict(self._versions())
            return self._tools

    def key(self, *, pristine: bytes | None, patched: bytes, shape: str | None, scripts: str) -> VerdictKey:
        return VerdictKey(
            pristine=None if pristine is None else _sha256(pristine),
            patched=_sha256(patched),
            shape=shape,
            scripts=scripts,
            harness=self.harness_version,
            tools={} if pristine is None else self._tool_versions(),
        )

    def path(self, key: VerdictKey) -> Path:
        digest = key.digest
        return self.root / digest[:2] / f"{digest}.json"

    def findings(
        self,
        *,
        pristine: bytes | None,
        patched: bytes,
        shape: str | None,
        scripts: str,
        compute: Callable[[], list[Finding]],
    ) -> list[Finding]:
        """The stored findings for these inputs, else `compute()`'s, stored for the next run.

        Findings that say the machine could not run a check (no confinement) are never stored: they are
        about this machine, not about the files.
        """
        key = self.key(pristine=pristine, patched=patched, shape=shape, scripts=scripts)

        def encode(findings: list[Finding]) -> bytes:
            raw = _findings_json(findings)
            entry = {"format": FORMAT, "key": key.document(), "findings": raw, "digest": _findings_digest(raw)}
            return json.dumps(entry, indent=1, sort_keys=True).encode() + b"\n"

        findings, reused = self._stored(
            self.path(key),
            decode=lambda data: _entry_findings(data, key),
            compute=compute,
            encode=encode,
            keep=lambda found: not any(f.needs for f in found),
        )
        return self._count(findings, reused=reused)

    def tool_output(self, tool: str, data: bytes, compute: Callable[[], bytes]) -> bytes:
        """A lint tool's output for these input bytes: stored like the verdicts, read back by the same tool version.

        hadolint reads upstream's Dockerfile once per check of every patched file made from it;
        with this it reads each distinct file once.
        """
        versions = self._tool_versions()
        document = {"format": FORMAT, "harness": self.harness_version, "tool": tool, "version": versions.get(tool)}
        document["input"] = _sha256(data)
        digest = _sha256(json.dumps(document, sort_keys=True).encode())

        def decode(stored: bytes) -> bytes | None:
            try:
                entry = json.loads(stored)
                output = entry["output"].encode()
            except (ValueError, KeyError, TypeError, AttributeError):
                return None
            whole = entry.get("key") == document and entry.get("digest") == _sha256(output)
            return output if whole else None

        def encode(output: bytes) -> bytes:
            entry = {"key": document, "output": output.decode(), "digest": _sha256(output)}
            return json.dumps(entry, sort_keys=True).encode() + b"\n"

        output, _ = self._stored(
            self.root / "tools" / digest[:2] / f"{digest}.json", decode=decode, compute=compute, encode=encode
        )
        return output

    def _stored(
        self,
        path: Path,
        *,
        decode: Callable[[bytes], T | None],
        compute: Callable[[], T],
        encode: Callable[[T], bytes],
        keep: Callable[[T], bool] = lambda _: True,
    ) -> tuple[T, bool]:
        """What `path` holds, else `compute()`'s result, published there; and whether it was read back.

        Looked up without a lock; on a miss, under a file lock of its own, looked up again
        (another run may have just computed it), computed, and published all at once.
        """
        # Unlocked, a bad entry is not worth a word yet: the look under the lock decides, and says why.
        if self.reuse and (stored := self._read(path, decode, warn=False)) is not None:
            return stored, True
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(path.with_suffix(".lock")))
            lock.acquire()
        except OSError as exc:
            # The store is a saving, not a requirement: without it the result is still computed.
            log.warning("cannot use the verdict store %s (%s): computing without it", self.root, exc.strerror)
            return compute(), False
        try:
            if self.reuse and (stored := self._read(path, decode)) is not None:
                return stored, True
            result = compute()
            if keep(result):
                self._publish(path, encode(result))
        finally:
            lock.release()
        return result, False

    def _count(self, findings: list[Finding], *, reused: bool) -> list[Finding]:
        with self._guard:
            if reused:
                self.reused += 1
            else:
                self.computed += 1
        return findings

    def _read(self, path: Path, decode: Callable[[bytes], T | None], *, warn: bool = True) -> T | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if warn:
                log.warning("stored static verdict %s cannot be read (%s): checking again", path, exc.strerror)
            return None
        result = decode(data)
        if result is None and warn:
            log.warning("stored static verdict %s is damaged or stale: checking again and replacing it", path)
        return result

    def _publish(self, path: Path, entry: bytes) -> None:
        try:
            atomic_write(path, entry, mode=0o644)
        except OSError as exc:
            # The verdict itself stands; only the next run's saving is lost.
            log.warning("cannot store the verdict in %s (%s): the next run computes it again", path, exc.strerror)
