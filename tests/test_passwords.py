"""Where a reader's password may come from, in core: the header first, then HTTP Basic,
then the page's form, and never the query string."""

from __future__ import annotations

import pytest

from teledrop.core.errors import InvalidOption
from teledrop.core.passwords import PASSWORD_HEADER, reader_password, refuse_in_query


def unread() -> str | None:
    raise AssertionError("the form is read only when nothing else gave a password")


def test_the_header_wins_and_the_form_is_not_read() -> None:
    assert reader_password({}, {PASSWORD_HEADER: "from header"}, "from basic", unread) \
        == "from header"


def test_a_header_is_decoded_as_utf8() -> None:
    raw = "pässwörd".encode().decode("latin-1")  # as WSGI hands header bytes over
    assert reader_password({}, {PASSWORD_HEADER: raw}) == "pässwörd"


def test_basic_comes_before_the_form() -> None:
    assert reader_password({}, {}, "from basic", unread) == "from basic"


def test_the_form_is_the_last_source() -> None:
    assert reader_password({}, {}, None, lambda: "from form") == "from form"
    assert reader_password({}, {}) is None


def test_a_password_in_the_query_string_is_refused_whatever_else_came() -> None:
    with pytest.raises(InvalidOption) as info:
        reader_password({"password": "x"}, {PASSWORD_HEADER: "y"})
    assert "query string" in info.value.message and PASSWORD_HEADER in info.value.message


def test_refuse_in_query_names_the_secret_and_what_to_use_instead() -> None:
    refuse_in_query({"slug": "x"}, "password", "a header")
    with pytest.raises(InvalidOption) as info:
        refuse_in_query({"password": ""}, "password", "a header")
    assert info.value.message == ("never send a password in the query string (it lands in "
                                  "logs): use a header")
