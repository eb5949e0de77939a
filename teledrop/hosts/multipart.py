"""werkzeug's multipart decoder, with each part's body handed out as views of the chunks.

werkzeug's ``MultipartDecoder`` appends every chunk to its buffer, searches the buffer and
slices each piece of a part's body out as a new ``bytes``: about three copies of every byte
of a file before teledrop's writer sees it. :class:`ViewDecoder` keeps werkzeug for all
that it parses (the preamble, part headers, delimiter lines, the epilogue, every malformed
case) and takes over only the plain stretches of a part's body.

While werkzeug is inside a part's body and holds nothing back, each new chunk is searched
(``bytes.find``) for the first byte that could begin a delimiter: a line break (CRLF, LF or
CR, the ones werkzeug accepts) followed by ``--boundary``, or a prefix of that cut by the
chunk's end. Everything before that byte is handed out as one ``Data`` event holding a
view of the chunk, not a copy; from that byte on, the chunk goes to werkzeug, which decides
what it is exactly as it would have alone.

Why the result is werkzeug's own, for any chunking: in a part's body werkzeug emits all of
its buffer but a tail that could begin a delimiter, and what it emits, keeps back or takes
as a delimiter depends only on where a delimiter can start and on the last
``len("\\r\\n--" + boundary)`` bytes of its buffer. The bytes handed out here are ones no
delimiter can start in, so werkzeug, fed the rest, sees the buffer it would have had with
a prefix of plain body bytes already emitted: the same delimiter, the same tail, the same
events after. (A boundary holding a line break, which HTTP headers cannot carry, turns the
fast path off.) The tests compare both on generated bodies and chunkings.

Whichever decoder runs, its reads come through :class:`DelimiterLines`, so that none ends
inside a delimiter line after the boundary: werkzeug mis-parses such a read.
"""

from __future__ import annotations

import ctypes
from typing import Any

from werkzeug.sansio.multipart import NEED_DATA, Data, Event, MultipartDecoder, State

#: What werkzeug accepts before ``--boundary``, longest first.
LINE_BREAKS = (b"\r\n", b"\n", b"\r")


def libc_memmem() -> Any:
    """The C library's ``memmem``, or None where there is none."""
    try:
        memmem = ctypes.CDLL(None).memmem
    except (OSError, AttributeError, TypeError):
        return None
    memmem.restype = ctypes.c_void_p
    memmem.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t)
    return memmem


_memmem = libc_memmem()


def find(data: bytes | bytearray, needle: bytes, start: int, end: int) -> int:
    """``data.find(needle, start, end)`` for ``0 <= start <= end <= len(data)``. In a
    ``bytearray`` (teledrop's read buffer) it is the C library's ``memmem`` over the same
    memory: glibc's is 2-3 times faster than ``bytes.find`` for a boundary, which is most
    of what the fast path costs per byte (docs/performance.md)."""
    if _memmem is None or not isinstance(data, bytearray) or end <= start:
        return data.find(needle, start, end)
    # the address of the buffer's first byte (the export lasts only for this call): no
    # ctypes array type per call, which cost as much as the search itself
    base = ctypes.addressof(ctypes.c_char.from_buffer(data))
    found = _memmem(base + start, end - start, needle, len(needle))
    return -1 if found is None else found - base


def line_break(data: bytes | bytearray, start: int, end: int) -> int:
    """Where the first CR or LF of ``data[start:end]`` is, or -1."""
    cr, lf = data.find(b"\r", start, end), data.find(b"\n", start, end)
    return lf if cr == -1 else cr if lf == -1 else min(cr, lf)


def searchable(data: bytes | bytearray | memoryview) -> bytes | bytearray:
    """``data`` as an object with ``find``: a view over all of a ``bytes`` or ``bytearray``
    is searched in place (teledrop's reads are views of one buffer); another is copied."""
    if not isinstance(data, memoryview):
        return data
    whole = data.obj
    if isinstance(whole, (bytes, bytearray)) and data.c_contiguous \
            and data.nbytes == len(whole):
        return whole
    return data.tobytes()


#: Longest transport padding (spaces and tabs after a delimiter) that :class:`DelimiterLines`
#: holds back for a read ending inside it; longer padding is hostile and goes on as it came.
MAX_PADDING = 64


class DelimiterLines:
    """The reads of a body for a decoder, none of them ending inside a delimiter line
    after its ``--boundary``: one dash of a closing ``--``, or transport padding, with the
    line break after it still to come.

    werkzeug, whose buffer ends so, takes the line break before the boundary for part data
    (a CR too many at the end of a file) or, after two or more spaces, the delimiter and
    the part after it as data; given the line whole, it parses it right. So the end of such
    a read waits for the next one (or for the body's end). Both decoders get the reads
    this makes, so the tests that hold :class:`ViewDecoder` to werkzeug's compare like
    with like."""

    def __init__(self, boundary: bytes) -> None:
        self._dashed = b"--" + boundary
        #: a boundary holding a line break (which HTTP headers cannot carry): nothing held
        self._enabled = b"\r" not in boundary and b"\n" not in boundary
        #: a line break, the boundary, a dash or padding: what a held line can hold
        self._window = 2 + len(self._dashed) + MAX_PADDING
        #: the last bytes given to the decoder, up to a window's worth
        self._given = b""
        #: the end of the last read, waiting for the next
        self.held = b""

    def take(self, data: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
        """What the decoder gets of ``data`` now: the held bytes, then ``data``, less an
        unfinished delimiter line at its end (held for the next read). Empty when all of it
        waits; ``data`` itself when nothing is held either way (the common case)."""
        if not self._enabled:
            return data
        if self.held:
            data = self.held + bytes(data)
            self.held = b""
        size = self._window
        window = (self._given + bytes(data[-size:]))[-size:]
        cut = len(data) - len(window) + self.line_start(window)
        if cut < len(data):
            cut = max(cut, 0)  # the line began in an earlier read: all of this one waits
            self.held = bytes(data[cut:])
            data = data[:cut]
            window = (self._given + bytes(data[-size:]))[-size:] if data else self._given
        self._given = window
        return data

    def release(self) -> bytes:
        """What is held, at the body's end."""
        held, self.held = self.held, b""
        return held

    def line_start(self, window: bytes) -> int:
        """Where in ``window`` an unfinished delimiter line begins, from its line break, or
        ``len(window)``."""
        last_break = max(window.rfind(b"\r"), window.rfind(b"\n"))
        line = window[last_break + 1:]
        if last_break == -1 or not line.startswith(self._dashed):
            return len(window)
        rest = line[len(self._dashed):]
        if rest != b"-" and (not rest or rest.strip(b" \t") or len(rest) > MAX_PADDING):
            return len(window)  # no delimiter, or one werkzeug parses right as it is
        crlf = last_break > 0 and window[last_break - 1:last_break + 1] == b"\r\n"
        return last_break - 1 if crlf else last_break


class ViewDecoder:
    """A ``MultipartDecoder`` whose body ``Data`` events may hold a ``memoryview`` of the
    data given to :meth:`receive_data`, valid until the next call: copy what you keep."""

    def __init__(self, boundary: bytes, max_form_memory_size: int | None = None, *,
                 max_parts: int | None = None) -> None:
        self._decoder = MultipartDecoder(boundary, max_form_memory_size, max_parts=max_parts)
        self._dashed = b"--" + boundary
        self._beginnings = tuple(line_break + self._dashed for line_break in LINE_BREAKS)
        self._longest = len(self._beginnings[0])
        self._enabled = b"\r" not in boundary and b"\n" not in boundary
        self._events: list[Data] = []
        #: a delimiter's beginning cut by the last read's end, which werkzeug would hold
        self._held = b""
        self._idle = False

    def receive_data(self, data: bytes | bytearray | memoryview | None) -> None:
        self._events.clear()
        self._idle = False
        inner = self._decoder
        if self._held:
            held, self._held = self._held, b""
            probe = held + bytes(data[:self._longest]) if data else held
            if data and self.possible_start(probe) >= len(held):
                self._events.append(Data(data=held, more_data=True))  # no delimiter after all
            else:
                inner.receive_data(held)
        if data and self._enabled and inner.state is State.DATA and not inner.buffer:
            haystack = searchable(data)
            end = len(data)
            chunk = memoryview(haystack)[:end]
            cut = self.first_beginning(haystack, end)
            if cut == end:
                cut = self.cut_beginning(haystack, end)
                self._held = bytes(chunk[cut:])
                self._idle = True  # werkzeug holds nothing: its next event is NeedData
            if cut:
                self._events.append(Data(data=chunk[:cut], more_data=True))  # type: ignore[arg-type]
            if self._idle:
                return
            data = chunk[cut:]
        inner.receive_data(data)

    def receive_plain(self, data: bytes | bytearray | memoryview) -> memoryview | None:
        """:meth:`receive_data` for a read of a part's body that, from its first byte, no
        delimiter can begin in, with the one ``Data`` event it makes taken at once: the
        read's plain bytes, a view of it (empty when all of it could begin a delimiter).
        None, and nothing done, for any other read: hand it to :meth:`receive_data`.

        Every read of a file but its last is such a read; taking it here skips the event
        and the loop over events, which cost more than its search (docs/performance.md)."""
        inner = self._decoder
        if self._held or not data or not self._enabled or inner.state is not State.DATA \
                or inner.buffer:
            return None
        haystack = searchable(data)
        end = len(data)
        if self.first_beginning(haystack, end) != end:
            return None
        cut = self.cut_beginning(haystack, end)
        chunk = memoryview(haystack)[:end]
        self._events.clear()
        self._held = bytes(chunk[cut:])
        self._idle = True  # werkzeug holds nothing: its next event is NeedData
        return chunk[:cut]

    def next_event(self) -> Event:
        if self._events:
            return self._events.pop(0)
        if self._idle:
            return NEED_DATA
        return self._decoder.next_event()

    def first_beginning(self, data: bytes | bytearray, end: int) -> int:
        """Where in ``data[:end]`` the first delimiter could begin (``end`` if nowhere):
        the line break before the first ``--boundary`` that has one."""
        dashed = self._dashed
        found = find(data, dashed, 0, end)
        while found != -1:
            if found and data[found - 1] in b"\r\n":
                return found - 2 if found >= 2 and data[found - 2:found] == b"\r\n" \
                    else found - 1
            found = find(data, dashed, found + 1, end)
        return end

    def cut_beginning(self, data: bytes | bytearray, end: int) -> int:
        """Where in ``data[:end]`` a delimiter's beginning cut short by ``end`` starts
        (``end`` if none does)."""
        tail_start = max(0, end - self._longest + 1)
        at = line_break(data, tail_start, end)  # most reads have none among their last bytes
        while at != -1:
            rest = bytes(data[at:end])
            if any(beginning.startswith(rest) for beginning in self._beginnings):
                return at
            at = line_break(data, at + 1, end)
        return end

    def possible_start(self, data: bytes) -> int:
        """Where in ``data`` a delimiter could begin, whole or cut by its end."""
        start = self.first_beginning(data, len(data))
        return start if start < len(data) else self.cut_beginning(data, len(data))
