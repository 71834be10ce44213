"""The journal that makes an apply or a revert all-or-nothing across a crash.

Each file is replaced by one rename, which is atomic; a patch of several files needs
more. Before the first rename, the journal records every file the patch changes, as it
is and as it will be, durably, in the checkout's git directory (`git rev-parse
--git-path mas-harness-journal`). It is removed once every file is written. The next
apply or revert that finds one finishes the interrupted run first (rolls it forward):
every file is then either written already or still as it was; a file that is neither
was changed by someone since, and the run stops and says so.

A journal is read only from where no upstream can put one: a commit cannot ship a file
into a git directory. A directory that is not the top of a git work tree (an exported
release, say) could ship any file inside it, so its journal lives outside it, in the
directory the caller names (the harness's XDG state directory), under a name made from
the checkout's real path. And a journal names only the files of the patch being applied
or reverted: an entry for any other file is refused, never rolled forward.

A series of patches is applied or reverted as one change, under one journal: it names
every patch of the series (`patch` is a list then; for one patch it stays the file name,
as journals have always had it) and holds every file any of them changes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BadInput
from harness.files import read_in_tree, remove_stray_temps, write_in_tree
from harness.proc import run

JOURNAL = "mas-harness-journal"
FORMAT = "mas-harness-journal/1"
_LIMIT = 256 * 2**20
"""Two copies of each file a patch changes, base64-encoded: far below this for any real patch."""


@dataclass(frozen=True, kw_only=True)
class JournalEntry:
    name: str
    before: bytes
    after: bytes


@dataclass(frozen=True, kw_only=True)
class Journal:
    action: str
    """`apply` or `revert`."""
    patches: tuple[str, ...]
    """The file names of the patches changed, in the order they apply: one, or a series."""
    entries: tuple[JournalEntry, ...]

    @property
    def patch(self) -> str:
        """The patches as a message names them."""
        return ", ".join(self.patches)

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "action": self.action,
                # One patch is named by a string, as before series existed: a journal of one patch reads the same.
                "patch": self.patches[0] if len(self.patches) == 1 else list(self.patches),
                "files": [
                    {
                        "name": entry.name,
                        "before": base64.b64encode(entry.before).decode(),
                        "after": base64.b64encode(entry.after).decode(),
                    }
                    for entry in self.entries
                ],
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, where: Path) -> Journal:
        unreadable = (
            f"{where} is not a journal this harness can read (%s); if no apply or revert was interrupted, delete it"
        )
        try:
            document = json.loads(data)
            if document.get("format") != FORMAT:
                raise BadInput(unreadable % f"format {document.get('format')!r}")
            named = document["patch"]
            patches = tuple(str(name) for name in named) if isinstance(named, list) else (str(named),)
            if not patches:
                raise BadInput(unreadable % "it names no patch")
            return cls(
                action=str(document["action"]),
                patches=patches,
                entries=tuple(
                    JournalEntry(
                        name=str(entry["name"]),
                        before=base64.b64decode(entry["before"], validate=True),
                        after=base64.b64decode(entry["after"], validate=True),
                    )
                    for entry in document["files"]
                ),
            )
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise BadInput(unreadable % f"{type(exc).__name__}: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class JournalFile:
    """Where a checkout's journal lives: the directory and the file name in it."""

    directory: Path
    name: str

    @property
    def path(self) -> Path:
        return self.directory / self.name

    @classmethod
    def of(cls, tree: Path, *, journals: Path | None) -> JournalFile | None:
        """The journal of `tree`: in its git directory, else in `journals`; None when neither is there."""
        probe = run("git", "rev-parse", "--show-toplevel", "--git-path", JOURNAL, cwd=tree, check=False)
        lines = os.fsdecode(probe.stdout).splitlines()
        if probe.returncode == 0 and len(lines) == 2 and Path(lines[0]).resolve() == tree.resolve():
            # --git-path answers relative to the directory git ran in, or absolute.
            path = tree / lines[1]
            return cls(directory=path.parent, name=path.name)
        if journals is None:
            return None
        key = hashlib.sha256(os.fsencode(os.path.realpath(tree))).hexdigest()[:32]
        return cls(directory=journals, name=f"{key}.{JOURNAL}")

    def read(self) -> Journal | None:
        if not self.directory.is_dir():
            return None
        data = read_in_tree(self.directory, self.name, limit=_LIMIT)
        return None if data is None else Journal.from_bytes(data, where=self.path)

    def write(self, journal: Journal) -> None:
        # Private: a journal holds the checkout's files.
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_in_tree(self.directory, self.name, journal.to_bytes())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def remove_stray_temps(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return [str(self.directory / name) for name in remove_stray_temps(self.directory, self.name)]


def roll_forward(tree: Path, journal_file: JournalFile, *, files: Sequence[str], limit: int) -> Journal | None:
    """Finish the apply or revert the journal records, if one was interrupted; the journal it finished.

    `files` are the patch's: a journal naming any other file is refused before anything is written.
    """
    journal = journal_file.read()
    if journal is None:
        return None
    outside = [entry.name for entry in journal.entries if entry.name not in files]
    if outside:
        raise BadInput(
            f"{journal_file.path} names {outside[0]}, which the patch does not change: a journal of this harness "
            "names only the patch's files; refusing it (delete it if no apply or revert of this patch was "
            "interrupted)"
        )
    for entry in journal.entries:
        current = read_in_tree(tree, entry.name, limit=limit)
        if current == entry.after:
            continue
        if current != entry.before:
            raise BadInput(
                f"{tree / entry.name} changed after the {journal.action} of {journal.patch} was interrupted; "
                f"{journal_file.path} holds the file as it was and as the {journal.action} leaves it: restore "
                "one of them and run again"
            )
        write_in_tree(tree, entry.name, entry.after)
    journal_file.remove()
    return journal
