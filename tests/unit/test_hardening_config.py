"""A pins or series file means what it says or is refused: unknown keys and tables, and values of the wrong shape,
are bad input naming the file and the key; a pins file that pins nothing cannot make a check pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.main import main
from harness.config.pins import load_pins
from harness.config.series import load_series
from harness.errors import BadInput
from harness.resources import patches_dir, pins_file
from tests.support import BUNDLE

VARIANT = '[[variant]]\nname = "a"\npatch = "p.patch"\nfrom = "v1.0.0"\nshape = "per-arch"\n'


def _pins(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pins.toml"
    path.write_text(text)
    if not (tmp_path / "patches").exists():
        (tmp_path / "patches").symlink_to(patches_dir())
    return path


def _shipped_with(edit: tuple[str, str]) -> str:
    text = pins_file().read_text()
    assert edit[0] in text
    return text.replace(*edit, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[pni]]\ntag = "v1.7.0"\n', r"pins.toml: unknown table \[\[pni\]\]"),
        ('[upstrem]\nurl = "https://example.com/x.git"\n', r"pins.toml: unknown table \[upstrem\]"),
        ("strict = true\n", "pins.toml: unknown key `strict`"),
        ('[upstream]\nurll = "https://example.com/x.git"\n', r"pins.toml \[upstream\]: unknown key `urll`"),
        ('[profiles.x]\ndescripton = "typo"\n', r"\[profiles.x\]: unknown key `descripton`"),
        ("[profiles.x]\ndescription = 5\n", "`description` must be a non-empty string, not the int 5"),
        ('pin = "x"\n', "`pin` must be an array of tables"),
        ('[pin]\ntag = "v1.7.0"\n', "`pin` must be an array of tables"),
        ("pin = [1]\n", "`pin` must be an array of tables"),
        ('upstream = "x"\n', r"\[upstream\] must be a table, not the str 'x'"),
        ("[upstream]\nurl = 5\n", "`url` must be a non-empty string, not the int 5"),
        ('[upstream]\nurl = ""\n', "`url` must be a non-empty string"),
        ("[upstream]\nseries = []\n", "`series` must be a non-empty string"),
    ],
    ids=[
        "typo-pni",
        "typo-upstrem",
        "top-level-key",
        "upstream-key",
        "profile-key",
        "profile-description",
        "pin-string",
        "pin-single-table",
        "pin-not-tables",
        "upstream-string",
        "url-number",
        "url-empty",
        "series-list",
    ],
)
def test_a_malformed_pins_file_is_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        load_pins(_pins(tmp_path, text))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('tag = "v1.7.0"\n', 'tag = "v1.7.0"\ntagg = "x"\n'), "pins.toml pin v1.7.0: unknown key `tagg`"),
        (('expected = "applies"\n', 'expected = "applies"\nexpect = "x"\n'), "unknown key `expect`"),
        (('dockerfile_blob = "dab76c', 'dockerfile_blob = "zzz76c'), "`dockerfile_blob` = 'zzz76c"),
        (('upstream_commit = "c39dcd6246eda81c7ac243c8b34be97f9ee77675"', "upstream_commit = 5"), "not the int 5"),
        (('patched_blob = "e740898653b42d06c9ad3375446b9495682d389c"', "patched_blob = 5"), "not the int 5"),
    ],
    ids=["pin-key", "pin-key-2", "blob-not-hex", "commit-number", "patched-blob-number"],
)
def test_a_malformed_pin_is_refused_naming_the_pin(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        load_pins(_pins(tmp_path, _shipped_with(edit)))


def test_the_shipped_pins_and_series_pass_the_stricter_reading() -> None:
    pins = load_pins()
    assert len(pins.pins) == 30
    assert [v.name for v in pins.series.variants] == ["v0.14", "v0.15-v1.17", "v1.18+"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[variants]]\n" + VARIANT.split("\n", 1)[1], r"series.toml: unknown table \[\[variants\]\]"),
        (VARIANT + 'shap = "single"\n', "series.toml variant a: unknown key `shap`"),
        ('variant = "x"\n', "`variant` must be an array of tables"),
        ("variant = [1]\n", "`variant` must be an array of tables"),
        (VARIANT.replace('name = "a"', "name = 5"), "`name` must be a non-empty string, not the int 5"),
    ],
    ids=["typo-variants", "variant-key", "variant-string", "variant-not-tables", "name-number"],
)
def test_a_malformed_series_is_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "p.patch").write_text("x")
    (tmp_path / "series.toml").write_text(text)
    with pytest.raises(BadInput, match=message):
        load_series(tmp_path / "series.toml")


@pytest.mark.parametrize(
    "text", ["", "# nothing pinned yet\n", '[[pni]]\ntag = "v1.7.0"\n'], ids=["empty", "comment", "typo"]
)
@pytest.mark.parametrize("command", ["compat", "check"])
def test_a_pins_file_that_pins_nothing_never_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, command: str
) -> None:
    pins = _pins(tmp_path, text)
    argv = [command, "--upstream", str(BUNDLE), "--cache-dir", str(tmp_path / "c"), "--pins", str(pins)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "nothing to check" in err[0] or "unknown table [[pni]]" in err[0]
