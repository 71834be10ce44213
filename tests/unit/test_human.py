"""Sizes as users write them for `advise --memory`, and as the harness writes them back."""

from __future__ import annotations

import pytest

from harness.errors import BadInput
from harness.human import binary_size_text, parse_memory_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("16G", 16 * 2**30),
        ("16g", 16 * 2**30),
        ("4GiB", 4 * 2**30),
        ("512M", 512 * 2**20),
        ("1.5G", 3 * 2**29),
        ("8GB", 8 * 10**9),
        ("2T", 2 * 2**40),
        ("64K", 64 * 2**10),
        ("17179869184", 17179869184),
        (" 16G ", 16 * 2**30),
    ],
)
def test_memory_sizes_read_as_docker_reads_them(text: str, size: int) -> None:
    assert parse_memory_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "16X", "-4G", "0", "0G", "16 G B", "sixteen", "1e9", "16iB", "B"])
def test_a_bad_memory_size_is_bad_input_in_one_line(text: str) -> None:
    with pytest.raises(BadInput, match="is not a memory size") as caught:
        parse_memory_size(text)
    assert "\n" not in str(caught.value)


def test_binary_sizes_read_back() -> None:
    assert binary_size_text(16 * 2**30) == "16 GiB"
    assert binary_size_text(512 * 2**20) == "512 MiB"
    assert binary_size_text(3 * 2**29) == "1.5 GiB"
