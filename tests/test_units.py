"""Sizes and durations as written in config files and upload options: every accepted
spelling gives the right number, everything else a one-line ValueError."""

from __future__ import annotations

import pytest

from teledrop.core.units import (
    describe_duration,
    describe_size,
    format_duration,
    format_eta,
    format_progress_size,
    format_size,
    parse_duration,
    parse_size,
)

KiB, MiB, GiB = 1024, 1024**2, 1024**3


@pytest.mark.parametrize(("value", "expected"), [
    (0, 0),
    (1, 1),
    (10 * GiB, 10 * GiB),
    ("0", 0),
    ("123", 123),
    ("100B", 100),
    ("1KiB", KiB),
    ("10MiB", 10 * MiB),
    ("10GiB", 10 * GiB),
    ("1KB", 1000),
    ("500MB", 500 * 1000**2),
    ("2GB", 2 * 1000**3),
    ("1.5KiB", 1536),
    ("500 MB", 500 * 1000**2),
    ("  7 MiB  ", 7 * MiB),
    ("10gib", 10 * GiB),
])
def test_parse_size_accepts(value: int | str, expected: int) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", [
    "", " ", "MiB", "10 parsecs", "10XB", "10 Mi", "1e6", "1,000", "10MiB extra",
    "-1", "-1KiB", "+5", -1, -10 * GiB, True, False,
])
def test_parse_size_refuses(value: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(value)  # type: ignore[arg-type]
    assert "\n" not in str(info.value) and str(info.value)


@pytest.mark.parametrize(("value", "expected"), [
    (0, 0),
    (90, 90),
    ("90", 90),
    ("30s", 30),
    ("15m", 15 * 60),
    ("2h", 2 * 3600),
    ("7d", 7 * 86400),
    ("30d", 30 * 86400),
    (" 5 m ", 300),
    ("1.5h", 5400),
])
def test_parse_duration_accepts(value: int | str, expected: int) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", [
    "", "s", "soon", "5w", "5y", "5 mins", "1h30m", "-5", "-5m", -1, True, False, "1e3",
])
def test_parse_duration_refuses(value: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)  # type: ignore[arg-type]
    assert "\n" not in str(info.value) and str(info.value)


def test_duration_units_are_not_size_units() -> None:
    # "m" is minutes here; a size unit in a duration is a mistake, not a silent number.
    with pytest.raises(ValueError):
        parse_duration("10MB")
    with pytest.raises(ValueError):
        parse_size("10m")


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (512, "512 B"), (KiB, "1 KiB"), (1536, "1.5 KiB"), (10 * GiB, "10 GiB"),
])
def test_format_size_reads_back(n: int, text: str) -> None:
    assert format_size(n) == text
    assert parse_size(text.replace(" ", "")) == n


@pytest.mark.parametrize(("seconds", "short", "words"), [
    (1, "1s", "1 second"), (45, "45s", "45 seconds"), (60, "1m", "1 minute"),
    (90, "90s", "90 seconds"), (600, "10m", "10 minutes"), (3600, "1h", "1 hour"),
    (5400, "90m", "90 minutes"), (86400, "1d", "1 day"), (7 * 86400, "7d", "7 days")])
def test_durations_are_written_as_options_take_them(seconds: int, short: str,
                                                    words: str) -> None:
    assert format_duration(seconds) == short and parse_duration(short) == seconds
    assert describe_duration(seconds) == words


@pytest.mark.parametrize(("n", "described", "progress"), [
    (0, "0 bytes", "0 B"), (1, "1 byte", "1 B"), (1023, "1023 bytes", "1023 B"),
    (1024, "1.0 KiB (1,024 bytes)", "1.0 KiB"), (4 * MiB, "4.0 MiB (4,194,304 bytes)", "4.0 MiB"),
    (15 * MiB, "15 MiB (15,728,640 bytes)", "15.0 MiB"),
    (1024 * GiB, "1.0 TiB (1,099,511,627,776 bytes)", "1.0 TiB")])
def test_sizes_for_people(n: int, described: str, progress: str) -> None:
    assert describe_size(n) == described
    assert format_progress_size(n) == progress


@pytest.mark.parametrize(("seconds", "eta"), [
    (0, "0:00"), (0.2, "0:01"), (249, "4:09"), (3599, "59:59"), (3600, "1h00m"),
    (7500, "2h05m"), (100 * 3600 - 1, "99h59m"), (100 * 3600, ">99h")])
def test_an_eta_fits_six_characters(seconds: float, eta: str) -> None:
    assert format_eta(seconds) == eta and len(eta) <= 6
