"""Where upstream comes from, and what a ref may be: the source kinds and transports the harness allows,
and git's rules for a ref it can look up (a tag, a branch or a full commit id, optionally peeled)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.errors import CommandFailed, UpstreamError
from harness.proc import GIT_PROTOCOLS, git

SourceKind = Literal["url", "path", "bundle"]
SHA = re.compile(r"^[0-9a-f]{40}$")
# What may follow a tag, branch or commit id in a revision that still names one commit: `^`, `^N`, `~N`, `^{...}`.
_PEEL_SUFFIX = re.compile(r"(?:\^\{[a-z]*\}|[\^~][0-9]*)+")
# git check-ref-format's rules for a ref name (one level allowed), as characters and sequences it never has.
_NOT_IN_REF_NAMES = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|//|@\{|/\.|\.lock(?:/|$)")
# `scheme://...`, or git's `transport::address`, which runs a remote helper (`ext::` runs any command).
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)(://|::)")
# The URL schemes of the transports git is allowed (`git+ssh://` and `ssh+git://` are git's names for ssh).
_ALLOWED_SCHEMES = (*GIT_PROTOCOLS, "git+ssh", "ssh+git")
_BUNDLE_SIGNATURES = (b"# v2 git bundle\n", b"# v3 git bundle\n")


@dataclass(frozen=True, kw_only=True)
class UpstreamSource:
    """Where upstream comes from: a git URL, a local repository, or a bundle file."""

    location: str
    kind: SourceKind

    @classmethod
    def parse(cls, text: str) -> UpstreamSource:
        scheme = _URL_SCHEME.match(text)
        if scheme is not None or text.startswith("-"):
            if scheme is None or scheme.group(2) != "://" or scheme.group(1).lower() not in _ALLOWED_SCHEMES:
                raise UpstreamError(
                    f"upstream {text!r} is not allowed: name an https://, ssh://, git:// or file:// URL, "
                    "user@host:path, a local repository or a bundle"
                )
            return cls(location=text, kind="url")
        if re.match(r"^[\w.-]+@[\w.-]+:", text):
            return cls(location=text, kind="url")
        path = Path(text).expanduser()
        if path.is_file():
            with path.open("rb") as handle:
                # The signature's length at most: a large file with no newline is not read to its end.
                signature = handle.readline(len(_BUNDLE_SIGNATURES[0]))
            if signature not in _BUNDLE_SIGNATURES:
                raise UpstreamError(f"upstream {text} is a file but not a git bundle")
            return cls(location=str(path.resolve()), kind="bundle")
        if path.is_dir():
            try:
                git("rev-parse", "--git-dir", cwd=path)
            except CommandFailed:
                raise UpstreamError(f"upstream {text} is a directory but not a git repository") from None
            return cls(location=str(path.resolve()), kind="path")
        raise UpstreamError(f"upstream {text} is neither a URL nor an existing repository or bundle")

    @property
    def fetch_url(self) -> str:
        # file:// makes git use the pack protocol, so --depth and --filter take effect for local paths too.
        return f"file://{self.location}" if self.kind == "path" else self.location

    @property
    def cache_key(self) -> str:
        digest = hashlib.sha256(os.fsencode(self.location)).hexdigest()[:16]
        stem = re.sub(r"[^A-Za-z0-9]+", "-", self.location.rstrip("/").rsplit("/", 1)[-1]).strip("-")
        return f"{stem or 'upstream'}-{digest}"


@dataclass(frozen=True, kw_only=True)
class WantedRef:
    """A ref as given, split into the name or commit id it starts from and what peels it further."""

    ref: str
    base: str
    suffix: str

    @property
    def by_id(self) -> bool:
        return SHA.match(self.base) is not None


def is_ref_name(name: str) -> bool:
    """Whether `name` could be a tag or branch name (git check-ref-format's rules, one level allowed).

    Checked here rather than by spawning `git check-ref-format` once per ref: runs check hundreds.
    """
    return (
        bool(name)
        and name != "@"
        and not name.startswith(("-", "/", "."))
        and not name.endswith(("/", "."))
        and _NOT_IN_REF_NAMES.search(name) is None
    )


def parse_ref(ref: str) -> WantedRef:
    """A tag, branch or full commit id, optionally peeled (`v1.17.0^0`, `v1.17.0~1`); anything else is refused."""
    cut = min((i for i in (ref.find("^"), ref.find("~")) if i >= 0), default=len(ref))
    base, suffix = ref[:cut], ref[cut:]
    if (is_ref_name(base) or SHA.match(base)) and (not suffix or _PEEL_SUFFIX.fullmatch(suffix)):
        return WantedRef(ref=ref, base=base, suffix=suffix)
    if not ref or ref.startswith("-"):
        raise UpstreamError(f"invalid ref {ref!r}")
    raise UpstreamError(
        f"invalid ref {ref!r}: name a tag, a branch or a full commit id, optionally followed by ^, ^N, ~N or "
        f"^{{commit}} (reflog and range expressions such as @{{1}} or A..B mean nothing to the upstream)"
    )
