"""Moving up: copy every live drop and the token store from one teledrop's backends to
another's (local disk and SQLite to S3 and PostgreSQL, say).

Only the Storage and Metadata interfaces are used, so any pair of backends works,
third-party ones included. A drop is copied the way an upload is committed: its bytes
stream from the source blob into a staged target blob, hashed on the way; the blob is
published only when the hash is the recorded one, then the record is inserted under the
same slug (with the blob id the target storage chose), and a failed insert discards the
published blob. Links keep working because slugs are kept.

A drop already in the target with the same hash is skipped, so running the migration
again resumes one that stopped half-way. A slug the target holds with another file is
a failure, never overwritten. Expired and exhausted drops are left behind.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import blake3

from .drop import Drop, now
from .errors import TeledropError, TokenExists
from .interfaces import TokenRecord
from .service import Teledrop

log = logging.getLogger(__name__)

#: Bytes read from the source and written to the target at a time: memory per copy.
CHUNK_SIZE = 256 * 1024

COPIED, SKIPPED, FAILED = "copied", "skipped", "failed"
_DRY = {COPIED: "would copy", SKIPPED: "would skip", FAILED: "would fail"}

Progress = Callable[[int], None]


def _ignore(_done: int) -> None:
    pass


@dataclass(frozen=True)
class Outcome:
    """What became (or, in a dry run, would become) of one drop or token."""

    kind: str  # "drop", "token"
    name: str  # the slug, or the token's name
    status: str  # COPIED, SKIPPED, FAILED
    reason: str = ""
    size: int = 0

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    def describe(self, dry_run: bool = False) -> str:
        verb = _DRY[self.status] if dry_run else self.status
        line = f"{verb} {self.kind} {self.name}"
        if self.kind == "drop" and self.status == COPIED:
            return f"{line} ({self.size} bytes)"
        if self.failed:
            return f"{line}: {self.reason}"
        return f"{line} ({self.reason})" if self.reason else line


@dataclass
class Tally:
    """The counts a migration's summary gives."""

    drops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_DRY, 0))
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_DRY, 0))
    #: bytes of the drops copied
    bytes: int = 0
    #: expired or exhausted drops, left behind
    gone: int = 0

    def count(self, outcome: Outcome) -> None:
        counts = self.drops if outcome.kind == "drop" else self.tokens
        counts[outcome.status] += 1
        if outcome.kind == "drop" and outcome.status == COPIED:
            self.bytes += outcome.size

    @property
    def failed(self) -> int:
        return self.drops[FAILED] + self.tokens[FAILED]

    def describe(self, dry_run: bool = False) -> list[str]:
        def words(status: str) -> str:
            return _DRY[status] if dry_run else status

        drops, tokens = self.drops, self.tokens
        return [
            f"{words(COPIED)} {drops[COPIED]} drop(s) ({self.bytes} bytes), "
            f"{words(SKIPPED)} {drops[SKIPPED]}, {words(FAILED)} {drops[FAILED]}; "
            f"{self.gone} expired or exhausted not copied",
            f"{words(COPIED)} {tokens[COPIED]} token(s), {words(SKIPPED)} {tokens[SKIPPED]}, "
            f"{words(FAILED)} {tokens[FAILED]}",
        ]


class Refused(Exception):
    """A drop the migration itself will not call copied: its file does not match its
    record, no hasher here computes its hash, or its insert's outcome is unknown."""


class Migration:
    """One run from ``source`` to ``target``. The records are read when it is made, so
    :attr:`total_bytes` is known before the first byte is copied."""

    def __init__(self, source: Teledrop, target: Teledrop, chunk_size: int = CHUNK_SIZE) -> None:
        self.source, self.target, self.chunk_size = source, target, chunk_size
        self.tally = Tally()
        self._decided: list[Outcome] = []
        self._pending: list[Drop] = []
        at = now()
        for drop in source.metadata.iter_drops():
            if drop.is_gone(at):
                self.tally.gone += 1
                continue
            there = target.metadata.get(drop.slug)
            if there is None:
                self._pending.append(drop)
            elif there.hash == drop.hash:
                self._decided.append(Outcome("drop", drop.slug, SKIPPED,
                                             "already in the target", drop.size))
            else:
                self._decided.append(Outcome("drop", drop.slug, FAILED,
                                             f"the target holds another file under this slug "
                                             f"({there.hash}, not {drop.hash})"))
        self._tokens = source.metadata.list_tokens()
        self._present = {token.name for token in target.metadata.list_tokens()}

    @property
    def total_bytes(self) -> int:
        """Bytes of the drops to copy."""
        return sum(drop.size for drop in self._pending)

    def run(self, dry_run: bool = False, on_progress: Progress | None = None) -> Iterator[Outcome]:
        """Copy (or, with ``dry_run``, only name) each token and drop, yielding what became
        of each and counting it into :attr:`tally`. ``on_progress`` gets the bytes done
        so far, out of :attr:`total_bytes`."""
        for outcome in self._outcomes(dry_run, on_progress or _ignore):
            self.tally.count(outcome)
            yield outcome

    def _outcomes(self, dry_run: bool, on_progress: Progress) -> Iterator[Outcome]:
        for token in self._tokens:
            if token.name in self._present:
                yield Outcome("token", token.name, SKIPPED, "already in the target")
            elif dry_run:
                yield Outcome("token", token.name, COPIED)
            else:
                yield self._copy_token(token)
        yield from self._decided
        done = 0
        for drop in self._pending:
            if dry_run:
                yield Outcome("drop", drop.slug, COPIED, size=drop.size)
                continue
            start = done

            def advance(n: int) -> None:
                nonlocal done
                done += n
                on_progress(done)

            outcome = self.copy_drop(drop, advance)
            done = start + drop.size  # a failed or odd-sized copy still ends at its share
            on_progress(done)
            yield outcome

    def _copy_token(self, token: TokenRecord) -> Outcome:
        try:
            self.target.metadata.add_token(token)
        except TokenExists:  # taken since the listing
            return Outcome("token", token.name, SKIPPED, "already in the target")
        except TeledropError as exc:
            return Outcome("token", token.name, FAILED, exc.message)
        return Outcome("token", token.name, COPIED)

    def copy_drop(self, drop: Drop, on_bytes: Progress = _ignore) -> Outcome:
        """Copy one drop. A drop that fails leaves nothing in the target; the error is
        the outcome's reason (a shutdown, such as Ctrl-C, is raised once cleaned up)."""
        try:
            self._copy(drop, on_bytes)
        except (TeledropError, Refused, OSError) as exc:
            reason = exc.message if isinstance(exc, TeledropError) else str(exc)
            return Outcome("drop", drop.slug, FAILED, reason, drop.size)
        return Outcome("drop", drop.slug, COPIED, size=drop.size)

    def _copy(self, drop: Drop, on_bytes: Progress) -> None:
        hasher = self._hasher(drop)
        with self.source.storage.open(drop.blob_id) as source:
            blob = self.target.storage.stage(size_hint=drop.size)
            record = dataclasses.replace(drop, blob_id=blob.blob_id, delete_token=None)
            inserting = False
            try:
                size = 0
                while chunk := source.read(self.chunk_size):
                    hasher.update(chunk)
                    blob.write(chunk)
                    size += len(chunk)
                    on_bytes(len(chunk))
                digest = f"{hasher.name}:{hasher.hexdigest()}"
                if size != drop.size or digest != drop.hash:
                    raise Refused(f"the source file does not match its record: size {size} / "
                                  f"{digest} != recorded {drop.size} / {drop.hash}")
                blob.publish()
                inserting = True
                self.target.metadata.insert(record)
            except BaseException as exc:
                found = self._found(record) if inserting else False
                if found is False:
                    _undo(blob.discard, f"discard blob {blob.blob_id}")
                if isinstance(exc, Exception):  # a shutdown (Ctrl-C) is never swallowed
                    if found is True:
                        return  # inserted, though the store's answer was lost
                    if found is None:
                        raise Refused(f"{exc}, and the target cannot be read back: its file "
                                      f"{blob.blob_id} is kept in case the record landed (gc "
                                      "removes it if not)") from exc
                raise
            finally:
                _undo(blob.close, f"close blob {blob.blob_id}")

    def _found(self, record: Drop) -> bool | None:
        """Whether the target holds ``record`` after an insert that raised; ``None`` when
        it cannot say. Then the blob is kept: an orphan is gc's to remove, while a record
        whose file was discarded would be a broken link."""
        try:
            stored = self.target.metadata.get(record.slug)
        except Exception:
            return None
        return stored is not None and stored.blob_id == record.blob_id

    def _hasher(self, drop: Drop) -> Any:
        """A hasher of the algorithm ``drop.hash`` was recorded with: the source's own
        (``teledrop_hasher``), else blake3 (the default) when that is the one."""
        algorithm = drop.hash.partition(":")[0]
        hasher = self.source.hook("teledrop_hasher")
        if hasher.name == algorithm:
            return hasher
        if algorithm == "blake3":
            return blake3.blake3()
        raise Refused(f"recorded with {algorithm}, which no hasher here computes "
                      f"(the configured one is {hasher.name})")


def _undo(action: Callable[[], Any], what: str) -> None:
    """Run a clean-up step; log its failure instead of raising, so that the error that
    stopped the copy is the one reported."""
    try:
        action()
    except Exception:
        log.exception("migrate: could not %s", what)
