"""The essential compensation chain around ``teledrop_commit_drop``.

Outermost: publish the blob, and discard it if anything inside fails. Innermost: insert
the record. Plugins with side effects wrap the same hook in between and undo their own
work; the outermost undo runs last, the saga order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import Any

from teledrop import hookimpl
from teledrop.core.drop import Drop
from teledrop.core.errors import SlugTaken, TeledropError, Unavailable
from teledrop.core.interfaces import BlobWriter, Metadata

log = logging.getLogger(__name__)

#: How many fresh slugs to try when a generated one is found taken at insert.
GENERATED_SLUG_RETRIES = 5


def replaced_error(exc: BaseException) -> BaseException | None:
    """The teledrop error that ``exc`` replaced, when ``exc`` (not a teledrop error) was
    raised while that one was being handled: a plugin's undo failed. A shutdown
    (KeyboardInterrupt, SystemExit) is never replaced."""
    if isinstance(exc, TeledropError) or not isinstance(exc, Exception):
        return None
    context = exc.__context__
    while context is not None:
        if isinstance(context, TeledropError):
            return context
        context = context.__context__
    return None


def undo(action: Callable[[], Any], what: str) -> None:
    """Run a compensating action; log its failure instead of raising, so the error that
    caused the undo is the one every outer caller sees."""
    try:
        action()
    except BaseException:  # noqa: BLE001 - an undo must never replace the original error
        log.exception("teledrop: undo failed: %s", what)


class CommitChain:
    """Registered by teledrop for each app, after every other plugin (so that its
    ``tryfirst`` wrapper is the outermost one)."""

    teledrop_plugin_name = "commit_chain"

    def __init__(self, metadata: Metadata, new_slug: Callable[[Drop], str]) -> None:
        self.metadata = metadata
        self.new_slug = new_slug

    @hookimpl(specname="teledrop_commit_drop", wrapper=True, tryfirst=True)
    def publish_blob(self, drop: Drop, blob: BlobWriter) -> Generator[None, Any, Any]:
        try:
            blob.publish()  # a publish that fails half-way (renamed, dir not synced) is undone too
            return (yield)
        except BaseException as exc:
            # A wrapper may fail after the insert returned: the record goes first.
            undo(lambda: self.forget(drop, blob), f"remove record {drop.slug}")
            undo(blob.discard, f"discard blob {blob.blob_id}")
            original = replaced_error(exc)
            if original is None:
                raise
            log.error("teledrop: a plugin failed while undoing %s", drop.slug, exc_info=exc)
            raise original from None

    def forget(self, drop: Drop, blob: BlobWriter) -> None:
        """Remove this upload's record if it was inserted (never another upload's)."""
        self.metadata.delete(drop.slug, blob.blob_id)

    @hookimpl(specname="teledrop_commit_drop", trylast=True)
    def insert_drop(self, drop: Drop) -> Drop:
        for attempt in range(GENERATED_SLUG_RETRIES + 1):
            try:
                self.metadata.insert(drop)
                return drop
            except SlugTaken:
                if drop.custom_slug:
                    raise
                # A generated slug is in use (or just lost a race): take a new one.
                if attempt == GENERATED_SLUG_RETRIES:
                    raise Unavailable("could not find a free slug") from None
                drop.slug = self.new_slug(drop)
        raise AssertionError("unreachable")
