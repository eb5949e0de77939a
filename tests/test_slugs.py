"""Slug rules: custom slugs follow the syntax and avoid reserved words;
generated slugs are URL-safe, carry at least 48 random bits, do not repeat, and every one
of them is a working link."""

from __future__ import annotations

import io
import math
import re
import secrets
import string
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from teledrop import hookimpl
from teledrop.core import slugs
from teledrop.core.errors import ConfigError, InvalidSlug
from teledrop.plugins import default_slug
from teledrop.core.slugs import check_custom_slug, check_not_reserved, generate_slug
from teledrop.web.app import service_of
from tests.http_helpers import assert_nothing_stored

URL_SAFE = string.ascii_letters + string.digits + "-_"
RESERVED_WORDS = ["api", "static", "healthz", "metrics", "openapi.json", "favicon.ico",
                  "robots.txt"]


@pytest.mark.parametrize("slug", [
    "abc", "a" * 64, "my.file-v2_x", "_abc", "0ab", "A1.", "x--", "report.pdf", "UPPER",
])
def test_valid_custom_slug(slug: str) -> None:
    check_custom_slug(slug)


@pytest.mark.parametrize("slug", [
    "", "a", "ab", "a" * 65, ".abc", "-abc", "..", "...", "a/b", "a b", "ab%", "ab?",
    "über", "abc\n", "\nabc", "ab\x00c", "a:b", "ab#", "..%2f",
])
def test_invalid_custom_slug(slug: str) -> None:
    with pytest.raises(InvalidSlug):
        check_custom_slug(slug)


@pytest.mark.parametrize("word", RESERVED_WORDS)
def test_reserved_words_refused_in_any_case(word: str) -> None:
    for spelling in (word, word.upper(), word.capitalize()):
        with pytest.raises(InvalidSlug):
            check_not_reserved(spelling)


@pytest.mark.parametrize("slug", ["apis", "my-api", "static1", "robots.txt2", "healthzz"])
def test_words_near_reserved_ones_are_free(slug: str) -> None:
    check_not_reserved(slug)
    check_custom_slug(slug)


@pytest.mark.parametrize("word", ["api", "Static", "HEALTHZ", "openapi.json", "robots.txt"])
def test_reserved_custom_slug_is_refused_over_http(client, word: str) -> None:
    response = client.put(f"/a.txt?slug={word}", data=b"x",
                          headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_slug"


def test_default_slug_plugin_applies_custom_rules_only_to_custom_slugs(service) -> None:
    def check(slug: str, custom: bool) -> None:
        service.hook("teledrop_check_slug", slug=slug, custom=custom)

    with pytest.raises(InvalidSlug):
        check("-abcdefg", custom=True)
    check("-abcdefg", custom=False)  # token_urlsafe may start with "-"
    with pytest.raises(InvalidSlug):
        check("api", custom=False)


def test_generated_slug_is_url_safe_with_48_bits() -> None:
    draws = [generate_slug() for _ in range(200)]
    for slug in draws:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", slug), slug
    assert {len(slug) for slug in draws} == {slugs.GENERATED_SLUG_LENGTH}
    # the first character from FIRST_CHARS, every other one from all 64 (tested below)
    bits = math.log2(len(slugs.FIRST_CHARS)) + (slugs.GENERATED_SLUG_LENGTH - 1) * 6
    assert bits >= 48


def test_a_generated_slug_never_starts_like_a_command_line_option() -> None:
    draws = [generate_slug() for _ in range(5000)]
    assert not any(slug.startswith("-") for slug in draws)
    assert {slug[0] for slug in draws} == set(slugs.FIRST_CHARS)


def test_generated_slugs_use_the_whole_alphabet_and_do_not_repeat() -> None:
    draws = [generate_slug() for _ in range(20000)]
    assert len(set(draws)) == len(draws)
    # 6 bits per character only if all 64 symbols occur; a narrower alphabet (hex, a
    # shortened token) would leave some out over 160,000 characters.
    assert set("".join(draws)) == set(URL_SAFE)


def test_generated_slug_comes_from_the_hook(service) -> None:
    slug = service.hook("teledrop_generate_slug", drop=None)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", slug) and len(slug) == slugs.GENERATED_SLUG_LENGTH


@pytest.mark.parametrize("drawn", ["-AbCdEfG", "_AbCdEfG", "AbC-_dEf"])
def test_every_generated_slug_is_a_working_link(app, monkeypatch, drawn: str) -> None:
    # A slug policy plugin may start slugs with "-" (teledrop's own never does): such a
    # link must work too.
    monkeypatch.setattr(default_slug, "generate_slug", lambda: drawn)
    client = app.test_client()
    created = client.put("/a.txt", data=b"payload")
    assert created.status_code == 201, created.data
    assert created.headers["Location"] == f"/{drawn}"
    assert service_of(app).metadata.get(drawn) is not None
    for path in (f"/{drawn}", f"/{drawn}/a.txt"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.data)
        assert response.data == b"payload"
    assert client.get(f"/api/drops/{drawn}").status_code == 200
    token = created.headers["X-Delete-Token"]
    assert client.delete(f"/{drawn}", headers={"X-Delete-Token": token}).status_code == 204


def test_custom_slug_round_trip_over_http(client) -> None:
    created = client.post("/", data={"slug": "my.report-1", "file": (io.BytesIO(b"r"), "r.txt")})
    assert created.status_code == 201, created.data
    assert created.get_data(as_text=True).strip().endswith("/my.report-1")
    assert client.get("/my.report-1").data == b"r"


# --- what every generated slug must satisfy --------------------------------------------

def measured_bits(draws: list[str]) -> float:
    """The randomness of a generator, measured from its slugs: the sum over positions of
    the empirical entropy of the character there (what a guesser who knew each position's
    distribution would still face; an estimate from N draws errs low, never high)."""
    total = 0.0
    for position in range(max(len(slug) for slug in draws)):
        counts = Counter(slug[position] for slug in draws if len(slug) > position)
        n = sum(counts.values())
        total += -sum(c / n * math.log2(c / n) for c in counts.values()) * n / len(draws)
    return total


def test_the_built_in_generator_measures_at_least_48_bits() -> None:
    draws = [generate_slug() for _ in range(20000)]
    assert measured_bits(draws) >= slugs.MIN_GENERATED_BITS == 48
    assert len(set(draws)) == len(draws)


def test_the_measure_catches_a_generator_below_the_floor() -> None:
    # 7 base64url characters hold 42 bits; 3 fixed characters and 10 hex ones, 40
    assert measured_bits([secrets.token_urlsafe(6)[:7] for _ in range(20000)]) < 48
    assert measured_bits(["abc" + secrets.token_hex(5) for _ in range(20000)]) < 48


@pytest.mark.parametrize("slug", ["abcdefgh", "-abcdefg", "_" * 64, "A1b2C3d4-_"])
def test_a_generated_slug_that_teledrop_accepts(slug: str) -> None:
    slugs.check_generated_slug(slug)


@pytest.mark.parametrize("slug", ["abcdefg", "a" * 65, "abc.defgh", "abcd efgh", "abcdéfgh",
                                  "abcdefg\n", "", None, 12345678])
def test_a_generated_slug_that_teledrop_refuses(slug: object) -> None:
    with pytest.raises(InvalidSlug):
        slugs.check_generated_slug(slug)


def test_a_generated_slug_may_not_be_a_reserved_word(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slugs, "RESERVED", slugs.RESERVED | {"dashboard"})
    with pytest.raises(InvalidSlug, match="reserved"):
        slugs.check_generated_slug("DashBoard")


class Answers:
    """A slug plugin that answers ``answers`` in turn, the last one for ever."""

    teledrop_plugin_name = "my_slugs"

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)

    @hookimpl
    def teledrop_generate_slug(self) -> object:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize(("answer", "problem"), [
    ("short", "returned 'short', which teledrop refuses: a generated slug is 8-64 characters"),
    ("has.dots.in", "returned 'has.dots.in', which teledrop refuses"),
    (1234567890, "a generated slug must be a string, not int"),
    (RuntimeError("no database"), "teledrop_generate_slug failed: RuntimeError: no database"),
])
def test_a_slug_plugin_whose_slugs_teledrop_refuses_stops_start_up(
        make_app: Callable[..., Flask], answer: object, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_app([Answers(answer)])
    message = str(info.value)
    assert "\n" not in message and message.startswith("plugins: my_slugs: ")
    assert problem in message


def test_a_slug_plugin_that_goes_bad_later_costs_a_503_and_nothing_stored(
        make_app: Callable[..., Flask], data_dir: Path) -> None:
    plugin = Answers("good-slug-1", "good-slug-2", "good-slug-3", "good-slug-4", "bad")
    app = make_app([plugin])
    response = app.test_client().put("/a.txt", data=b"x", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.get_json()["error"] == {"code": "unavailable",
                                            "message": "could not generate an acceptable slug"}
    assert_nothing_stored(app, data_dir)


def test_without_any_slug_generator_start_up_stops(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match="no plugin generates slugs"):
        make_app(plugins_section={"disabled": ["default_slug"]})
