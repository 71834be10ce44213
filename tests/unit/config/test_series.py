"""The series file: which patch variant a ref takes and why, the load-time agreement of pins and series, and a
malformed series refused naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.pins import load_pins
from harness.config.series import Series, load_series, newest_release, tag_version
from harness.errors import BadInput
from harness.resources import patches_dir, pins_file


@pytest.fixture(scope="module")
def project_series() -> Series:
    return load_series(patches_dir() / "series.toml")


def test_the_project_series_has_three_contiguous_ranges(project_series: Series) -> None:
    assert [(v.name, v.first, v.until, v.shape, v.patch.name) for v in project_series.variants] == [
        ("v0.14", "v0.14.0", "v0.15.0", "per-arch", "patch-dockerfile-v0.14.patch"),
        ("v0.15-v1.17", "v0.15.0", "v1.18.0", "per-arch", "patch-dockerfile.patch"),
        ("v1.18+", "v1.18.0", "v2.0.0", "single", "patch-dockerfile-v1.18.patch"),
    ]


@pytest.mark.parametrize(
    ("ref", "variant"),
    [
        ("v0.14.0", "v0.14"),
        ("v0.14.1", "v0.14"),
        ("v0.15.0", "v0.15-v1.17"),
        ("v1.17.0", "v0.15-v1.17"),
        ("v1.18.0", "v1.18+"),
        ("v1.19.0", "v1.18+"),
        ("v1.20.0", "v1.18+"),
        ("v1.20.0-rc.0", "v1.18+"),  # a pre-release sorts before its release, inside the range
        ("v0.15.0-rc.0", "v0.14"),
    ],
)
def test_a_release_inside_a_range_takes_that_variant(ref: str, variant: str, project_series: Series) -> None:
    choice = project_series.choose(ref)
    assert (choice.variant.name, choice.basis, choice.version_tag) == (variant, "in-range", ref)
    assert choice.reason.startswith(f"{ref}: in the {variant} range [")


def test_a_release_above_every_range_takes_the_nearest_lower_one(project_series: Series) -> None:
    choice = project_series.choose("v2.0.0")
    assert (choice.variant.name, choice.basis) == ("v1.18+", "nearest-lower")
    assert choice.reason == "v2.0.0: outside every range; using the v1.18+ variant (nearest lower range)"


def test_a_release_below_every_range_takes_the_lowest(project_series: Series) -> None:
    choice = project_series.choose("v0.13.2")
    assert (choice.variant.name, choice.basis) == ("v0.14", "lowest")
    assert "below every range" in choice.reason


def test_a_gap_between_ranges_takes_the_range_below(tmp_path: Path) -> None:
    (tmp_path / "a.patch").write_text("x")
    (tmp_path / "b.patch").write_text("x")
    series = tmp_path / "series.toml"
    series.write_text(
        '[[variant]]\nname = "a"\npatch = "a.patch"\nfrom = "v1.0.0"\nuntil = "v1.2.0"\nshape = "per-arch"\n'
        '[[variant]]\nname = "b"\npatch = "b.patch"\nfrom = "v1.5.0"\nshape = "single"\n'
    )
    loaded = load_series(series)
    assert loaded.choose("v1.3.0").variant.name == "a"
    assert loaded.choose("v1.3.0").basis == "nearest-lower"
    assert loaded.choose("v9.0.0").variant.name == "b"
    assert loaded.choose("v9.0.0").basis == "in-range"  # no `until`: open-ended


def test_a_branch_takes_the_range_of_its_nearest_release_tag(project_series: Series) -> None:
    choice = project_series.choose("main", described="v1.3.0")
    assert (choice.variant.name, choice.basis, choice.version_tag) == ("v0.15-v1.17", "in-range", "v1.3.0")
    assert choice.reason.startswith("main: not a release tag; the newest release tag in its fetched history is v1.3.0")
    beyond = project_series.choose("feature", described="v2.1.0")
    assert (beyond.variant.name, beyond.basis) == ("v1.18+", "nearest-lower")
    assert beyond.reason.endswith("outside every range; using the v1.18+ variant (nearest lower range)")


@pytest.mark.parametrize("ref", ["main", "c7fd1f986258b26320a87a3af92c1093af28a48e", "1234567", "unstable"])
def test_a_ref_with_no_release_tag_takes_the_newest_range(ref: str, project_series: Series) -> None:
    choice = project_series.choose(ref)
    assert (choice.variant.name, choice.basis, choice.version_tag) == ("v1.18+", "newest", None)
    assert "no release tag in its fetched history; using the newest range" in choice.reason


def test_tag_versions() -> None:
    assert tag_version("v1.18.0") is not None
    assert tag_version("v1.18.0-rc.1") is not None
    assert tag_version("1.18.0") is None  # MAS tags carry the `v`; a bare number may be a short commit id
    assert tag_version("vnext") is None
    assert tag_version("main") is None


def test_newest_release_ignores_pre_releases_unless_there_is_nothing_else() -> None:
    assert newest_release(["v1.9.0", "v1.19.0", "v1.20.0-rc.0", "unstable", "v1.10.0"]) == "v1.19.0"
    assert newest_release(["v2.0.0-rc.0", "v2.0.0-rc.1", "unstable"]) == "v2.0.0-rc.1"
    assert newest_release(["v2.0.0-rc.1"], prerelease_fallback=False) is None
    assert newest_release(["main", "unstable"]) is None


VARIANT = '[[variant]]\nname = "{name}"\npatch = "{patch}"\nfrom = "{first}"\n{until}shape = "{shape}"\n'


def _series(tmp_path: Path, *variants: dict[str, str]) -> Path:
    (tmp_path / "p.patch").write_text("x")
    path = tmp_path / "series.toml"
    text = ""
    for v in variants:
        fields = {"name": "a", "patch": "p.patch", "first": "v1.0.0", "shape": "per-arch", "until": "", **v}
        if fields["until"]:
            fields["until"] = f'until = "{fields["until"]}"\n'
        text += VARIANT.format(**fields)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([{"patch": "missing.patch"}], "patch .*missing.patch does not exist"),
        ([{"shape": "round"}], "`shape` must be one of per-arch, single"),
        ([{"first": "one"}], "`from` = 'one' is not a release tag"),
        ([{"until": "v0.9.0"}], "`until` v0.9.0 is not after `from` v1.0.0"),
        ([{"name": "a", "until": "v2.0.0"}, {"name": "b", "first": "v1.5.0"}], "overlap"),
        ([{"name": "a"}, {"name": "b", "first": "v3.0.0"}], "overlap"),  # `a` has no end
        ([{"name": "a", "until": "v2.0.0"}, {"name": "a", "first": "v2.0.0"}], "used twice"),
        ([], "has no \\[\\[variant\\]\\]"),
    ],
)
def test_a_bad_series_is_bad_input(tmp_path: Path, variants: list[dict[str, str]], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        load_series(_series(tmp_path, *variants))


def _pins_copy(tmp_path: Path, edit: tuple[str, str] | None = None) -> Path:
    text = (pins_file()).read_text()
    if edit:
        assert text.count(edit[0]) >= 1
        text = text.replace(*edit, 1)
    (tmp_path / "patches").symlink_to(patches_dir())
    pins = tmp_path / "pins.toml"
    pins.write_text(text)
    return pins


def test_every_pin_takes_the_series_choice_for_its_tag() -> None:
    pins = load_pins()
    assert isinstance(pins.series, Series)
    for pin in pins.pins:
        assert Path(pin.patch).name == pins.series.choose(pin.tag).variant.patch.name, pin.tag
    assert pins.default_patch == "patches/patch-dockerfile-v1.18.patch"  # the newest range: for unknown refs


def test_a_pin_disagreeing_with_the_series_fails_to_load(tmp_path: Path) -> None:
    # v1.18.0's pin is the first to name the v1.18 patch; point it at the v0.15 - v1.17 one.
    right = 'patch = "patches/patch-dockerfile-v1.18.patch"'
    pins = _pins_copy(tmp_path, (right, 'patch = "patches/patch-dockerfile.patch"'))
    with pytest.raises(BadInput) as caught:
        load_pins(pins)
    assert str(caught.value) == (
        "pins.toml pin v1.18.0: patch is patches/patch-dockerfile.patch, but series.toml gives v1.18.0 the "
        "v1.18+ variant (patches/patch-dockerfile-v1.18.patch); make them agree"
    )


def test_series_and_default_patch_together_are_refused(tmp_path: Path) -> None:
    pins = _pins_copy(
        tmp_path,
        ('series = "patches/series.toml"\n', 'series = "patches/series.toml"\ndefault_patch = "patches/x.patch"\n'),
    )
    with pytest.raises(BadInput, match="give `series` or `default_patch`, not both"):
        load_pins(pins)


def test_a_pins_file_without_series_uses_its_one_patch_for_every_ref(tmp_path: Path) -> None:
    pins = tmp_path / "pins.toml"
    pins.write_text('[upstream]\ndefault_patch = "only.patch"\n')
    (tmp_path / "only.patch").write_text("x")
    loaded = load_pins(pins)
    for ref in ("v0.14.0", "v9.0.0", "main"):
        choice = loaded.series.choose(ref)
        assert (choice.variant.patch, choice.basis, choice.variant.shape) == (tmp_path / "only.patch", "only", None)


ONE_VARIANT = '[[variant]]\nname = "a"\npatch = "p.patch"\nfrom = "v1.0.0"\nshape = "per-arch"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[variants]]\n" + ONE_VARIANT.split("\n", 1)[1], r"series.toml: unknown table \[\[variants\]\]"),
        (ONE_VARIANT + 'shap = "single"\n', "series.toml variant a: unknown key `shap`"),
        ('variant = "x"\n', "`variant` must be an array of tables"),
        ("variant = [1]\n", "`variant` must be an array of tables"),
        (ONE_VARIANT.replace('name = "a"', "name = 5"), "`name` must be a non-empty string, not the int 5"),
    ],
    ids=["typo-variants", "variant-key", "variant-string", "variant-not-tables", "name-number"],
)
def test_a_malformed_series_is_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "p.patch").write_text("x")
    (tmp_path / "series.toml").write_text(text)
    with pytest.raises(BadInput, match=message):
        load_series(tmp_path / "series.toml")
