"""Post-image drift: the pin a ref's patched Dockerfile is compared with when no pin speaks for it."""

from __future__ import annotations

from harness.analysis.drift import nearest_pin
from harness.analysis.patched import RunMemo
from harness.config.pins import load_pins
from harness.config.series import Choice


def test_nearest_pin_is_the_same_patch_at_or_below_the_version() -> None:
    pins = load_pins()
    series = pins.series

    def nearest(ref: str, described: str | None = None) -> str | None:
        choice: Choice = series.choose(ref, described=described)
        pin = nearest_pin(pins, choice, choice.variant.patch, memo=RunMemo())
        return pin.tag if pin else None

    assert nearest("v1.17.5") == "v1.17.0"
    assert nearest("v1.9.1") == "v1.9.0"
    assert nearest("v3.0.0") == "v1.19.0"
    assert nearest("v0.13.0") == "v0.14.0"  # below every pin of its variant: the lowest
    assert nearest("main") == "v1.19.0"
    assert nearest("main", described="v1.4.1") == "v1.4.1"
