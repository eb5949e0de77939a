"""The docs state core's rules as core has them: the custom slug syntax, the lengths of a
title and a description, the owner list's page sizes, sort keys and filters, the editable
fields. The page and the OpenAPI document read the same values from core."""

from __future__ import annotations

import re
from pathlib import Path

from teledrop.core.interfaces import SORT_KEYS
from teledrop.core.manage import DEFAULT_PAGE_SIZE, DEFAULT_SORT, EDITABLE, FILTERS, \
    MAX_PAGE_SIZE, ORDERS
from teledrop.core.options import MAX_DESCRIPTION, MAX_TITLE
from teledrop.core.slugs import CUSTOM_SLUG_MAX, CUSTOM_SLUG_MIN
from teledrop.core.upload import OPTION_NAMES

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
OWNERS = (REPO / "docs" / "owners.md").read_text()


def table_row(text: str, first_cell: str) -> str:
    """The Markdown table row whose first cell is ``first_cell`` (a code span)."""
    rows = [line for line in text.splitlines() if line.startswith(f"| `{first_cell}` |")]
    assert rows, f"no row for {first_cell}"
    return rows[0]


def test_the_readme_states_the_slug_syntax() -> None:
    assert f"{CUSTOM_SLUG_MIN}–{CUSTOM_SLUG_MAX} characters" in table_row(README, "slug")


def test_every_upload_option_is_documented() -> None:
    for name in OPTION_NAMES:
        assert f"`{name}`" in OWNERS, name


def test_the_lengths_of_a_title_and_a_description() -> None:
    assert f"up to {MAX_TITLE} characters" in table_row(OWNERS, "title")
    assert f"up to {MAX_DESCRIPTION} characters" in table_row(OWNERS, "description")


def test_the_owner_list_parameters() -> None:
    table = OWNERS[OWNERS.index("| parameter | values | default |"):]
    assert f"1–{MAX_PAGE_SIZE} | `{DEFAULT_PAGE_SIZE}`" in table_row(table, "page_size")
    sort = table_row(table, "sort")
    assert re.findall(r"`(\w+)`", sort)[1:] == [*SORT_KEYS, DEFAULT_SORT]
    order = table_row(table, "order")
    assert set(re.findall(r"`(\w+)`", order)[1:]) == set(ORDERS)
    assert f"`{ORDERS[0]}`" in order.rsplit("|", 2)[1]
    for name in FILTERS:
        assert "`true` / `false`" in table_row(table, name)


def test_every_editable_field_is_documented() -> None:
    edits = OWNERS[OWNERS.index("PATCH"):]
    for name in EDITABLE:
        assert f"| `{name}` |" in edits, name
