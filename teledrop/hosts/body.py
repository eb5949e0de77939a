"""Stream a request body into a core :class:`~teledrop.core.upload.Upload`.

Multipart bodies go through werkzeug's sans-IO ``MultipartDecoder`` in a loop of our own
(the one ``MultiPartParser.parse`` runs), so that form fields sent before the file are
acted on before its bytes arrive, the file part goes straight into the staging writer,
and a body that ends before its closing boundary is an error, not an empty form. The
decoder is :class:`~.multipart.ViewDecoder`, which hands the plain stretches of the file
part over as views of the reads instead of werkzeug's copies. Raw bodies skip the parser
altogether.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Protocol

from werkzeug.datastructures import Headers
from werkzeug.exceptions import ClientDisconnected as WerkzeugClientDisconnected
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from teledrop.core.errors import ClientDisconnected, MalformedBody, TooLarge, UploadTimeout
from teledrop.core.upload import IngestWriter, Upload

from .multipart import DelimiterLines, ViewDecoder

Decoder = ViewDecoder | MultipartDecoder


class BodyStream(Protocol):
    """A request body as a host hands it over: a file object, or the WSGI host's reader
    straight from gunicorn's socket (which has ``readinto`` and no ``read``)."""

    def readinto(self, buffer: memoryview | bytearray) -> int: ...

#: Bytes per read, into one reused buffer (a body of known length is received straight
#: from the socket). 512 KiB took a raw PUT from 0.68x to 0.94x of a plain receive-hash-write
#: server's speed against 256 KiB; 1 MiB gained no more and holds more per upload
#: (docs/performance.md).
READ_SIZE = 512 * 1024
#: Largest non-file form field, and the decoder's buffer bound (kept ≥ 2× READ_SIZE).
MAX_FIELD_SIZE = 64 * 1024
MAX_DECODER_BUFFER = 2 * READ_SIZE + MAX_FIELD_SIZE
#: Largest body of any request but an upload (a password form, an owner's JSON edit).
SMALL_BODY_LIMIT = 64 * 1024
#: A direct upload's completion lists every part (up to 10,000, about 60 bytes each).
COMPLETE_BODY_LIMIT = 2 * 1024 * 1024
#: A form with more parts than this is hostile: teledrop takes one file and 3 options.
MAX_PARTS = 16
#: Room the multipart framing and option fields may add on top of the file itself.
MULTIPART_OVERHEAD = 1024 * 1024
FILE_FIELD = "file"
#: RFC 2046's boundary length, in any printable ASCII (clients stray from its exact set).
_BOUNDARY = re.compile(r"[ -~]{1,70}")
#: gunicorn's own limits for a request's headers, applied to each part's.
MAX_PART_HEADERS = 100
MAX_PART_HEADER_BYTES = 8190


def multipart_boundary(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` body.

    :raises MalformedBody: for another type, or a boundary RFC 2046 would not allow."""
    mimetype, options = parse_options_header(content_type or "")
    if mimetype != "multipart/form-data" or not options.get("boundary"):
        raise MalformedBody("send multipart/form-data with a part named 'file', "
                            "or PUT the raw body")
    if not _BOUNDARY.fullmatch(options["boundary"]):
        raise MalformedBody("the multipart boundary must be 1-70 printable ASCII characters")
    return options["boundary"].encode("latin-1")


def check_part_headers(headers: Headers) -> None:
    if len(headers) > MAX_PART_HEADERS:
        raise MalformedBody(f"a form part has more than {MAX_PART_HEADERS} headers")
    if any(len(name) + len(value) + 2 > MAX_PART_HEADER_BYTES for name, value in headers.items()):
        raise MalformedBody(f"a form part header is longer than {MAX_PART_HEADER_BYTES} bytes")


@contextmanager
def transport_errors() -> Iterator[None]:
    """Map failures of the client's connection while reading a body onto core errors."""
    try:
        yield
    except WerkzeugClientDisconnected:
        raise ClientDisconnected() from None
    except RequestEntityTooLarge:
        raise TooLarge("the request body is too large") from None
    except TimeoutError as exc:  # limits.idle_timeout on the client's socket
        raise UploadTimeout("the upload sent nothing for too long and was dropped") from exc
    except ConnectionError as exc:
        raise ClientDisconnected() from exc
    except Exception as exc:
        # gunicorn's NoMoreData, ChunkMissingTerminator, InvalidChunkSize...: a body cut
        # short or broken in its framing
        if type(exc).__module__.startswith("gunicorn.http"):
            raise ClientDisconnected("the request body is broken or cut short") from exc
        raise


#: What werkzeug's multipart decoder raises for a body it refuses.
DECODER_ERRORS = (ValueError, RequestEntityTooLarge)


def decoder_error(exc: Exception) -> MalformedBody:
    """werkzeug's multipart decoder's complaint as MalformedBody."""
    if isinstance(exc, RequestEntityTooLarge):
        return MalformedBody(f"more than {MAX_PARTS} form parts, or a part header too large")
    return MalformedBody("malformed multipart body")


def body_chunks(stream: IO[bytes] | BodyStream, end_with_empty: bool = False,
                read_size: Callable[[], int] | None = None) -> Iterator[bytes | memoryview]:
    """The body in pieces of up to READ_SIZE bytes (or what ``read_size`` asks for before
    each read, at most that), then one empty piece if asked.

    A stream with ``readinto`` fills one reused buffer: each piece is a view of it that is
    valid only until the next one is asked for (the writer and the multipart decoder copy
    what they keep). Only the reads are translated by :func:`transport_errors`: what the
    consumer does with a piece (plugins, storage) raises its own errors."""
    with transport_errors():
        readinto = getattr(stream, "readinto", None)
        if readinto is None:
            while chunk := stream.read(read_size() if read_size else READ_SIZE):
                yield chunk
        else:
            buffer = bytearray(READ_SIZE)
            view = memoryview(buffer)
            while n := readinto(view[:read_size()] if read_size else buffer):
                yield view[:n]
    if end_with_empty:
        yield b""


def reads_from(position: int) -> Callable[[], int]:
    """``read_size`` for :func:`body_chunks` when the body's first byte is byte
    ``position`` of its file: one read up to the next multiple of READ_SIZE, then READ_SIZE.
    Reads that start at multiples of READ_SIZE into the file, as a whole raw body's do, are
    written on page boundaries (a write that starts mid-page costs the page cache about a
    quarter more system time) and hashed by blake3 in whole subtrees (a read is hashed
    about an eighth slower when the bytes before it are not a multiple of its size);
    docs/performance.md, changes 12 and 19."""
    sizes = itertools.chain((READ_SIZE - position % READ_SIZE,), itertools.repeat(READ_SIZE))
    return sizes.__next__


def next_event(decoder: Decoder) -> object:
    """The decoder's next event; only its own failures become MalformedBody (plugins and
    storage run between events, and raise their own errors)."""
    try:
        return decoder.next_event()
    except DECODER_ERRORS as exc:
        raise decoder_error(exc) from None


def first_event(decoder: Decoder, data: bytes | memoryview) -> object:
    """The first event once ``data`` is received (the end of the body when it is empty)."""
    try:
        decoder.receive_data(data or None)
        return decoder.next_event()
    except DECODER_ERRORS as exc:
        raise decoder_error(exc) from None


def whole_lines(chunks: Iterator[bytes | memoryview], lines: DelimiterLines
                ) -> Iterator[bytes | bytearray | memoryview]:
    """``chunks`` (ending with an empty one) with no read ending inside a delimiter line:
    see :class:`~.multipart.DelimiterLines`."""
    for data in chunks:
        if not data:
            held = lines.release()
            if held:
                yield held
            yield data
            return
        data = lines.take(data)
        if data:
            yield data


def multipart_receiver(stream: IO[bytes] | BodyStream, boundary: bytes,
                       decoder_type: Callable[..., Decoder] = ViewDecoder
                       ) -> Callable[[Upload], None]:
    """A multipart body into the upload. ``decoder_type`` is werkzeug's own
    ``MultipartDecoder`` in the tests that hold :class:`ViewDecoder` to it."""

    def receive(upload: Upload) -> None:
        decoder = decoder_type(boundary, max_form_memory_size=MAX_DECODER_BUFFER,
                               max_parts=MAX_PARTS)
        part: Field | File | None = None
        writer: IngestWriter | None = None
        file_reads: Callable[[], int] | None = None
        field_data: list[bytes] = []
        field_size = 0

        def keep(data: bytes | memoryview) -> None:
            field_data.append(bytes(data))  # a view lasts only until the next read

        def read_size() -> int:
            """READ_SIZE until the file part opens, then reads aligned to the file's bytes
            (:func:`reads_from` what the first read left of it)."""
            nonlocal file_reads
            if writer is None:
                return READ_SIZE
            if file_reads is None:
                file_reads = reads_from(writer.size)
            return file_reads()

        write: Callable[[bytes | memoryview], object] = keep
        #: the file's reads that are plain body bytes, straight to its writer
        receive_plain = getattr(decoder, "receive_plain", None)
        in_file = False
        event: object = NeedData()
        # One read's events in a plain loop: this runs for every read that holds framing,
        # and a generator and context managers per read cost more than the search for its
        # delimiter (docs/performance.md).
        for data in whole_lines(body_chunks(stream, end_with_empty=True, read_size=read_size),
                                DelimiterLines(boundary)):
            if in_file and receive_plain is not None:
                plain = receive_plain(data)
                if plain is not None:
                    if plain:
                        write(plain)
                    continue
            event = first_event(decoder, data)
            while True:
                if type(event) is Data:
                    if part is not None and part.name != FILE_FIELD:
                        field_size += len(event.data)
                        if field_size > MAX_FIELD_SIZE:
                            raise MalformedBody(f"form field {part.name!r} is too large")
                        write(event.data)
                        if not event.more_data:
                            value = b"".join(field_data).decode("utf-8", "replace")
                            upload.set_field(part.name, value)
                    else:
                        write(event.data)
                elif isinstance(event, (Field, File)):
                    check_part_headers(event.headers)
                    part = event
                    in_file = event.name == FILE_FIELD
                    if in_file:
                        if isinstance(event, Field) and "filename" in \
                                event.headers.get("content-disposition", "").lower():
                            # werkzeug cut a filename at a raw CR or LF: refuse it
                            raise MalformedBody("the file part's filename cannot be parsed")
                        writer = upload.open_file(getattr(event, "filename", None),
                                                  event.headers.get("content-type"))
                        write = writer.write
                    elif isinstance(event, File):
                        raise MalformedBody(
                            f"unexpected file part {event.name!r}: send one part named 'file'")
                    else:
                        field_data.clear()
                        field_size = 0
                        write = keep
                elif isinstance(event, (Epilogue, NeedData)):
                    break
                event = next_event(decoder)
            if isinstance(event, Epilogue) or not data:
                break
        if not isinstance(event, Epilogue):
            raise MalformedBody("the multipart body ended before its closing boundary")

    return receive


def raw_receiver(stream: IO[bytes] | BodyStream, filename: str | None, content_type: str | None,
                 expected_size: int | None = None) -> Callable[[Upload], None]:
    """A raw body into the upload. With ``expected_size`` (Content-Length) a body that ends
    short is a vanished client: gunicorn reports a clean end of stream, not an error."""

    def receive(upload: Upload) -> None:
        writer = upload.open_file(filename, content_type)
        for chunk in body_chunks(stream):
            writer.write(chunk)
        if expected_size is not None and writer.size != expected_size:
            raise ClientDisconnected(
                f"the body ended after {writer.size} of {expected_size} bytes")

    return receive
