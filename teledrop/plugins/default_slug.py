"""The default slug policy: about 54 random bits for generated slugs; syntax and reserved words
for every slug."""

from __future__ import annotations

from teledrop import hookimpl
from teledrop.core.drop import Drop
from teledrop.core.slugs import check_custom_slug, check_not_reserved, generate_slug


@hookimpl(trylast=True)
def teledrop_generate_slug(drop: Drop) -> str:
    return generate_slug()


@hookimpl
def teledrop_check_slug(slug: str, custom: bool) -> None:
    if custom:
        check_custom_slug(slug)
    check_not_reserved(slug)
