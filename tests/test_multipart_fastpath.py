"""The multipart fast path against werkzeug's decoder alone.

Every generated body goes through teledrop's multipart receiver twice, with the same
reads: once with :class:`~teledrop.hosts.multipart.ViewDecoder` (the file's plain stretches
handed out as views) and once with werkzeug's ``MultipartDecoder``. Both must act on the
same fields in the same order and at the same point of the file, store the same file bytes
and refuse the same bodies with the same error. Bodies are built to be hard: delimiters
that almost match or are cut at every read's edge, CR and LF on edges, transport padding,
empty files, many fields, fields after the file, extra file parts, missing headers,
truncation, flipped bytes, and boundaries that are short, all dashes or full of spaces.
And a body as clients send it (CRLF framing, no boundary inside a part) decodes the same
in any reads as in one.

The default run is bounded (derandomised, so CI sees the same cases each time); the soak
run, ``pytest -m soak tests/test_multipart_fastpath.py``, draws thousands more.
"""

from __future__ import annotations

import io
import os
from mmap import PAGESIZE as PAGE_SIZE
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.sansio.multipart import Data, Epilogue, MultipartDecoder, NeedData

from teledrop.core.errors import MalformedBody
from teledrop.hosts import body
from teledrop.hosts.body import READ_SIZE, multipart_receiver
from teledrop.hosts.multipart import ViewDecoder, find

BOUNDED = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SOAK = settings(max_examples=4000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- what a receiver did -----------------------------------------------------------------

class FileLimitExceeded(Exception):
    """The sink's stand-in for the writer's size limit, checked per write like it."""


@dataclass
class Sink:
    """An upload that records what the receiver does, and refuses what ``Upload`` does:
    a second file, a file past ``limit`` bytes."""

    limit: int
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    file: bytearray | None = None

    def set_field(self, name: str, value: str) -> None:
        self.calls.append(("field", name, value, self.file_size))

    def open_file(self, filename: str | None, content_type: str | None) -> Sink:
        if self.file is not None:
            raise MalformedBody("send exactly one file")
        self.calls.append(("open", filename, content_type))
        self.file = bytearray()
        return self

    def write(self, data: bytes | memoryview) -> int:
        assert self.file is not None
        self.file += data  # copied: a view lasts only until the next read
        if len(self.file) > self.limit:
            raise FileLimitExceeded()
        return len(data)

    @property
    def file_size(self) -> int | None:
        return None if self.file is None else len(self.file)

    @property
    def size(self) -> int:
        return len(self.file or b"")


class ChunkedRead(io.RawIOBase):
    """A body that arrives in the given pieces, through ``read`` (``bytes`` pieces) or
    ``readinto`` (teledrop's reused buffer, as from a socket)."""

    def __init__(self, pieces: list[bytes], readinto: bool) -> None:
        self.pieces = list(reversed(pieces))
        if not readinto:
            self.readinto = None  # type: ignore[assignment]  # body_chunks then reads

    def read(self, size: int = -1) -> bytes:
        return self.pieces.pop() if self.pieces else b""

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        if not self.pieces:
            return 0
        piece = self.pieces.pop()
        if len(piece) > len(buffer):
            self.pieces.append(piece[len(buffer):])
            piece = piece[:len(buffer)]
        buffer[:len(piece)] = piece
        return len(piece)


Outcome = tuple[list[tuple[Any, ...]], bytes | None, tuple[str, str] | None]


def outcome(decoder_type: Callable[..., Any], boundary: bytes, pieces: list[bytes],
            readinto: bool, limit: int) -> Outcome:
    sink = Sink(limit)
    error = None
    try:
        multipart_receiver(ChunkedRead(pieces, readinto), boundary, decoder_type)(sink)  # type: ignore[arg-type]
    except Exception as exc:  # werkzeug crashing on a body counts too: it must be the same
        error = (type(exc).__name__, str(exc))
    return sink.calls, None if sink.file is None else bytes(sink.file), error


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` in pieces of the given sizes, cycled."""
    pieces, at, i = [], 0, 0
    while at < len(data):
        pieces.append(data[at:at + sizes[i % len(sizes)]])
        at += sizes[i % len(sizes)]
        i += 1
    return pieces


def assert_same(boundary: bytes, pieces: list[bytes], readinto: bool = True,
                limit: int = 1 << 30) -> Outcome:
    fast = outcome(ViewDecoder, boundary, pieces, readinto, limit)
    alone = outcome(MultipartDecoder, boundary, pieces, readinto, limit)
    if alone[2] is not None:
        # a refused body's staged bytes are discarded, and how far staging got differs:
        # werkzeug holds back more of a read's end than the fast path does
        fast, alone = (fast[0], None, fast[2]), (alone[0], None, alone[2])
    assert fast == alone, (boundary, pieces)
    return fast


# --- bodies --------------------------------------------------------------------------------

BOUNDARY_CHARS = "".join(chr(c) for c in range(0x20, 0x7F))
boundaries = st.one_of(
    st.text(BOUNDARY_CHARS, min_size=1, max_size=70),
    st.text("-", min_size=1, max_size=8),
    st.text("- \t", min_size=1, max_size=6).filter(lambda b: b.strip()),
    st.sampled_from(["------------------------d74496d66958873e", "b0undary", "x", "a-", "-a",
                     "td-boundary-7Qx", " ", "--", "B--B"]),
).map(lambda b: b.encode("latin-1"))


@st.composite
def tricky_bytes(draw: st.DrawFn, boundary: bytes, max_pieces: int = 12) -> bytes:
    """Bytes full of what could be taken for framing: line breaks, dashes, the boundary
    and its prefixes, delimiters that almost match, transport padding."""
    dashed = b"--" + boundary
    piece = st.one_of(
        st.binary(max_size=40),
        st.sampled_from([b"\r", b"\n", b"\r\n", b"-", b"--", b" ", b"\t", b"\r\r\n", b"\n\r"]),
        st.integers(0, len(dashed)).map(lambda k: dashed[:k]),
        st.tuples(st.sampled_from([b"\r\n", b"\n", b"\r", b"", b"x"]),
                  st.integers(0, len(dashed)),
                  st.sampled_from([b"", b"-", b"--", b"X", b" ", b"  \t", b"\r", b"\n",
                                   b"\r\n", b"-\r\n", b" \r\n"]))
        .map(lambda t: t[0] + dashed[:t[1]] + t[2]),
    )
    return b"".join(draw(st.lists(piece, max_size=max_pieces)))


@st.composite
def bodies(draw: st.DrawFn, boundary: bytes, big_fields: bool = True) -> bytes:
    dashed = b"--" + boundary
    line_break = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"])
    out = draw(st.sampled_from([b"", b"", b"preamble\r\n", b"\r\n"]))
    kinds = draw(st.lists(st.sampled_from(["file", "file", "field", "field", "file no name",
                                           "other file", "no disposition", "field many"]),
                          max_size=6))
    for kind in kinds:
        out += dashed + draw(st.sampled_from([b"", b"", b" ", b"\t "])) + draw(line_break)
        if kind == "no disposition":
            out += b"Content-Type: text/plain\r\n"
        elif kind.startswith("field"):
            name = draw(st.sampled_from(["slug", "expires", "title", "comment", "x"]))
            out += f'Content-Disposition: form-data; name="{name}"\r\n'.encode()
        else:
            name = "other" if kind == "other file" else "file"
            filename = "" if kind == "file no name" else '; filename="f.bin"'
            out += f'Content-Disposition: form-data; name="{name}"{filename}\r\n'.encode()
            if draw(st.booleans()):
                out += b"Content-Type: application/octet-stream\r\n"
        out += draw(line_break)
        if kind == "field many":
            out += b"v" * draw(st.sampled_from([10, 70_000] if big_fields else [10, 300]))
        else:
            out += draw(tricky_bytes(boundary))
        out += draw(line_break)
    out += dashed + draw(st.sampled_from([b"--", b"--\r\n", b"--  \r\n", b"-- epilogue"]))
    cut = draw(st.one_of(st.none(), st.integers(0, len(out))))
    out = out[:cut]
    for _ in range(draw(st.integers(0, 2))):  # a flipped byte anywhere
        if out:
            at = draw(st.integers(0, len(out) - 1))
            out = out[:at] + bytes([draw(st.sampled_from([13, 10, 45, 0, 32]))]) + out[at + 1:]
    return out


@st.composite
def cases(draw: st.DrawFn) -> tuple[bytes, bytes, list[int]]:
    boundary = draw(boundaries)
    data = draw(bodies(boundary))
    sizes = draw(st.one_of(
        st.lists(st.integers(1, 64), min_size=1, max_size=8),
        st.lists(st.integers(1, 5000), min_size=1, max_size=4),
        st.sampled_from([[1], [2], [3], [len(boundary) + 3], [len(boundary) + 4],
                         [len(boundary) + 5], [1 << 20]]),
    ))
    # no more than ~2,000 reads: a 70 KB field in 1-byte reads says nothing new
    return boundary, data, [max(size, len(data) // 2000) for size in sizes]


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[bytes, bytes, list[int]]:
    """A body as clients send them, and some reads of it: a boundary of letters and digits
    after some dashes, CRLF line breaks, transport padding, fields and a file whose bytes
    look like framing but hold no boundary."""
    boundary = (draw(st.sampled_from(["", "-", "----", "------------------------"]))
                + draw(st.text("abcdefXYZ0123456789", min_size=1, max_size=40))).encode()
    dashed = b"--" + boundary
    out = b""
    kinds = draw(st.lists(st.just("field"), max_size=3))
    kinds.insert(draw(st.integers(0, len(kinds))), "file")
    for kind in kinds:
        out += dashed + draw(st.sampled_from([b"", b" ", b" \t"])) + b"\r\n"
        name = b'"file"; filename="f.bin"' if kind == "file" else b'"title"'
        out += b"Content-Disposition: form-data; name=" + name + b"\r\n\r\n"
        content = draw(tricky_bytes(boundary))
        while boundary in content:
            content = content.replace(boundary, b"")
        out += content + b"\r\n"
    out += dashed + draw(st.sampled_from([b"--", b"--\r\n", b"--  \r\n", b"-- epilogue"]))
    sizes = draw(st.one_of(st.lists(st.integers(1, 64), min_size=1, max_size=8),
                           st.sampled_from([[1], [2], [3], [len(dashed) + 2]])))
    return boundary, out, sizes


# --- the properties ----------------------------------------------------------------------

def check_case(case: tuple[bytes, bytes, list[int]], readinto: bool, limit: int) -> None:
    boundary, data, sizes = case
    assert_same(boundary, split(data, sizes), readinto, limit)


def check_every_split(boundary: bytes, data: bytes) -> None:
    """The body in two reads, for every place the first can end, and in 1-byte reads."""
    for at in range(len(data) + 1):
        assert_same(boundary, [data[:at], data[at:]])
    assert_same(boundary, split(data, [1]))


def check_full_reads(case: tuple[bytes, bytes, list[int]]) -> None:
    """Reads that fill teledrop's whole buffer, as from a socket: the views searched in
    place (a read of ``READ_SIZE`` bytes)."""
    boundary, data, sizes = case
    with mock.patch.object(body, "READ_SIZE", sizes[0]):
        assert_same(boundary, [data])


@BOUNDED
@given(cases(), st.booleans(), st.sampled_from([1 << 30, 0, 100]))
def test_generated_bodies_and_reads_decode_as_werkzeug_alone(
        case: tuple[bytes, bytes, list[int]], readinto: bool, limit: int) -> None:
    check_case(case, readinto, limit)


#: every split of a body is quadratic in its length: no 70 KB fields there
small_bodies = boundaries.flatmap(lambda b: st.tuples(st.just(b), bodies(b, big_fields=False)))


@settings(BOUNDED, max_examples=40)
@given(small_bodies)
def test_every_split_of_a_body_decodes_as_werkzeug_alone(case: tuple[bytes, bytes]) -> None:
    check_every_split(*case)


@BOUNDED
@given(cases())
def test_reads_that_fill_the_buffer_decode_as_werkzeug_alone(
        case: tuple[bytes, bytes, list[int]]) -> None:
    check_full_reads(case)


def check_any_reads(case: tuple[bytes, bytes, list[int]]) -> None:
    """A well-formed body decodes in any reads as in one: the same fields, the same file."""
    boundary, data, sizes = case
    whole = outcome(ViewDecoder, boundary, [data], True, 1 << 30)
    assert outcome(ViewDecoder, boundary, split(data, sizes), True, 1 << 30) == whole, case
    assert whole[2] is None, case


@BOUNDED
@given(well_formed())
def test_a_well_formed_body_decodes_in_any_reads_as_in_one(
        case: tuple[bytes, bytes, list[int]]) -> None:
    check_any_reads(case)


@pytest.mark.soak
@pytest.mark.timeout(1200)
@SOAK
@given(well_formed())
def test_soak_well_formed_bodies(case: tuple[bytes, bytes, list[int]]) -> None:
    check_any_reads(case)


@pytest.mark.soak
@pytest.mark.timeout(1200)
@SOAK
@given(cases(), st.booleans(), st.sampled_from([1 << 30, 0, 100]))
def test_soak_generated_bodies(case: tuple[bytes, bytes, list[int]], readinto: bool,
                               limit: int) -> None:
    check_case(case, readinto, limit)


@pytest.mark.soak
@pytest.mark.timeout(1200)
@settings(SOAK, max_examples=500)
@given(small_bodies)
def test_soak_every_split(case: tuple[bytes, bytes]) -> None:
    check_every_split(*case)


@pytest.mark.soak
@pytest.mark.timeout(1200)
@SOAK
@given(cases())
def test_soak_full_reads(case: tuple[bytes, bytes, list[int]]) -> None:
    check_full_reads(case)


# --- the fast path is taken, and copies nothing ------------------------------------------

BOUNDARY = b"------------------------d74496d66958873e"
HEAD = (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; '
        b'filename="a.bin"\r\n\r\n')
TAIL = b"\r\n--" + BOUNDARY + b"--\r\n"


def file_events(data: bytes, read: int) -> list[tuple[bytes, bool]]:
    """The body pieces of a one-file form fed in reads of ``read`` bytes from one reused
    buffer, each with whether it came as a view of that buffer (a full read is searched in
    place, a short last one copied once)."""
    decoder = ViewDecoder(BOUNDARY)
    buffer = bytearray(read)
    pieces = []
    body_bytes = HEAD + data + TAIL
    for at in range(0, len(body_bytes), read):
        piece = body_bytes[at:at + read]
        buffer[:len(piece)] = piece
        decoder.receive_data(memoryview(buffer)[:len(piece)])
        while not isinstance(event := decoder.next_event(), NeedData):
            if isinstance(event, Data):
                viewed = isinstance(event.data, memoryview)
                if viewed and len(piece) == read:
                    assert event.data.obj is buffer  # a view of the read, not a copy
                pieces.append((bytes(event.data), viewed))
    return pieces


def test_a_file_body_is_handed_out_as_views_of_the_reads() -> None:
    read = 256 * 1024
    # line breaks only where put: a read whose end werkzeug holds back sends the next to it
    data = bytearray(os.urandom(4 << 20).replace(b"\r", b"r").replace(b"\n", b"n"))
    for k, cut in enumerate([b"\r", b"\n", b"\r\n-", b"\r\n--" + BOUNDARY[:9]] * 3, start=2):
        at = k * read - len(HEAD)  # reads that end in a delimiter's beginning, held here
        data[at - len(cut):at] = cut
    pieces = file_events(bytes(data), read)
    assert b"".join(piece for piece, _ in pieces) == data
    viewed = sum(len(piece) for piece, was_view in pieces if was_view)
    # all but werkzeug's share of the first read, and the cut beginnings held back
    assert viewed >= len(data) - read - 12 * len(BOUNDARY)


def test_a_file_of_framing_lookalikes_keeps_every_byte() -> None:
    # reads that end in a delimiter's beginning, a near miss, or a run of CRs
    lookalike = b"\r\n--" + BOUNDARY[:-1]
    unit = (os.urandom(1000) + lookalike + b"x" + os.urandom(500) + b"\r\n--" + BOUNDARY
            + b"X" + b"\r" * 7)
    for read in (5, len(lookalike), 4096, 256 * 1024):
        got = assert_same(BOUNDARY, split(HEAD + unit * 300 + TAIL, [read]))
        assert got[1] == unit * 300 and got[2] is None
    # In 1-byte reads too: werkzeug given a read that ends between the closing delimiter's
    # two dashes would store that delimiter's CR; the receiver holds such an end back.
    got = assert_same(BOUNDARY, split(HEAD + unit * 3 + TAIL, [1]))
    assert got[1] == unit * 3


@pytest.mark.parametrize("decoder_type", [ViewDecoder, MultipartDecoder],
                         ids=["fast path", "werkzeug"])
@pytest.mark.parametrize("after", [
    b"--\r\n", b"--", b"--  \t\r\n", b"-- epilogue",
    b"  \r\n" + b'Content-Disposition: form-data; name="title"\r\n\r\nT\r\n--' + BOUNDARY + b"--",
], ids=["closing", "closing, no line break", "closing, padded", "epilogue", "padded, field"])
def test_a_read_may_end_anywhere_in_the_delimiter_after_the_file(
        decoder_type: Callable[..., Any], after: bytes) -> None:
    """The file's bytes exactly, whatever read ends where in the line after it: werkzeug
    alone stores a CR too many when a read ends after one dash of the closing ``--``, and
    takes a padded delimiter for file data when a read ends in its padding."""
    content = b"y" * 100
    data = HEAD + content + b"\r\n--" + BOUNDARY + after
    for at in range(len(HEAD) + len(content) - 2, len(data) + 1):
        calls, file, error = outcome(decoder_type, BOUNDARY, [data[:at], data[at:]], True,
                                     1 << 30)
        assert (file, error) == (content, None), at
        if b"title" in after:
            assert ("field", "title", "T", len(content)) in calls, at


def test_the_file_is_written_at_multiples_of_the_read_size_after_its_first_reads() -> None:
    # no line break: werkzeug holds back no tail that would shift a write
    data = os.urandom(12 * READ_SIZE).replace(b"\r", b"r").replace(b"\n", b"n")
    sink = Sink(1 << 30)
    starts: list[int] = []
    write = sink.write
    sink.write = lambda piece: (starts.append(sink.size), write(piece))[1]  # type: ignore[method-assign]
    multipart_receiver(ChunkedRead([HEAD + data + TAIL], readinto=True), BOUNDARY)(sink)  # type: ignore[arg-type]
    assert sink.file == data and len(starts) >= 12
    # werkzeug's piece of the first read, then one read sized to end where a raw body's
    # read would (on a page boundary, and where blake3 hashes whole subtrees)
    assert starts[1] % PAGE_SIZE and not any(start % READ_SIZE for start in starts[2:])


@BOUNDED
@given(st.binary(max_size=300), st.binary(min_size=1, max_size=4), st.data())
def test_find_in_a_read_buffer_is_bytes_find(data: bytes, needle: bytes,
                                             draw: st.DataObject) -> None:
    data = data + needle * draw.draw(st.integers(0, 2))
    end = draw.draw(st.integers(0, len(data)))
    start = draw.draw(st.integers(0, end))
    assert find(bytearray(data), needle, start, end) == data.find(needle, start, end)


def test_a_refused_body_is_refused_alike_though_staged_further() -> None:
    form = HEAD + b"abc" * 10 + b"\nx\r"  # cut inside the file, after a line break
    pieces = split(form, [len(HEAD) + 5, 1000])
    fast = outcome(ViewDecoder, BOUNDARY, pieces, True, 1 << 30)
    alone = outcome(MultipartDecoder, BOUNDARY, pieces, True, 1 << 30)
    assert fast[2] == alone[2] == ("MalformedBody", "malformed multipart body")
    assert fast[1] == b"abc" * 10 + b"\nx" and alone[1] == b"abc" * 10
    assert_same(BOUNDARY, pieces)


def test_a_boundary_with_a_line_break_turns_the_fast_path_off() -> None:
    decoder = ViewDecoder(b"a\r\nb")
    decoder.receive_data(b"--a\r\nb\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n")
    while not isinstance(decoder.next_event(), NeedData):
        pass
    decoder.receive_data(b"x" * 100)
    event = decoder.next_event()
    assert isinstance(event, Data) and isinstance(event.data, bytes)  # werkzeug's own


def test_a_plain_read_of_the_file_is_taken_whole_and_any_other_is_left() -> None:
    decoder = ViewDecoder(BOUNDARY)
    head = bytearray(HEAD)
    assert decoder.receive_plain(memoryview(head)) is None  # the part's headers: werkzeug's
    decoder.receive_data(memoryview(head))
    while not isinstance(decoder.next_event(), NeedData):
        pass
    buffer = bytearray(b"plain bytes, then a cut beginning\r\n--" + BOUNDARY[:5])
    plain = decoder.receive_plain(memoryview(buffer))
    assert isinstance(plain, memoryview) and plain.obj is buffer  # a view, not a copy
    assert bytes(plain) == b"plain bytes, then a cut beginning"
    # the cut beginning is held: the next read decides, through receive_data
    assert decoder.receive_plain(bytearray(b"more")) is None
    decoder.receive_data(bytearray(b"more"))
    assert [decoder.next_event(), decoder.next_event()] == [
        Data(data=b"\r\n--" + BOUNDARY[:5], more_data=True), Data(data=b"more", more_data=True)]
    assert isinstance(decoder.next_event(), NeedData)
    # a read that holds a delimiter is left to receive_data, and so is the body's end
    assert decoder.receive_plain(bytearray(b"end" + TAIL)) is None
    decoder.receive_data(bytearray(b"end" + TAIL))
    first, last = decoder.next_event(), decoder.next_event()
    assert isinstance(first, Data) and bytes(first.data) == b"end" and first.more_data
    assert last == Data(data=b"", more_data=False)
    assert isinstance(decoder.next_event(), NeedData)
    assert decoder.receive_plain(b"") is None
    decoder.receive_data(None)
    assert isinstance(decoder.next_event(), Epilogue)


def test_the_reads_inside_the_file_skip_the_events() -> None:
    data = os.urandom(12 * READ_SIZE).replace(b"\r", b"r").replace(b"\n", b"n")
    sink = Sink(1 << 30)
    evented: list[int] = []
    receive_data = ViewDecoder.receive_data

    def counted(self: ViewDecoder, piece: Any) -> None:
        evented.append(len(piece or b""))
        receive_data(self, piece)

    with mock.patch.object(ViewDecoder, "receive_data", counted):
        multipart_receiver(ChunkedRead([HEAD + data + TAIL], readinto=True), BOUNDARY)(sink)  # type: ignore[arg-type]
    assert sink.file == data
    # the first read (the part's headers), the last (the closing delimiter), the end
    assert len(evented) == 3 and evented[-1] == 0, evented
