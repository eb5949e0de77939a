"""The HTTP client behind ``teledrop upload``, ``delete`` and ``info`` (the HTTP API of README.md).

No click in here: :class:`Client` talks to a teledrop server with ``requests`` and raises
:class:`ClientError` with a one-line reason; :class:`ProgressLine` draws an upload's
progress on a terminal. The command line in :mod:`teledrop.cli` only wires them up.

Uploads use ``PUT /{filename}`` with the raw file as the body, not a multipart form: the
body is the file itself, so its length is the file's size (``Content-Length`` comes from
``stat``, no framing to compute), the server takes its fastest path (no multipart parsing),
and options travel as query parameters, which the server checks before it reads the
body: a taken slug or a missing token is refused at once, and the client stops sending
when the server hangs up.
"""

from __future__ import annotations

import os
import stat
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, TextIO
from urllib.parse import quote, urlsplit

import requests
import requests.auth

from teledrop.core.passwords import PASSWORD_HEADER
from teledrop.core.slugs import could_be_slug

from teledrop.core.units import binary_unit, format_eta, format_progress_size

DEFAULT_SERVER = "http://127.0.0.1:8000"
#: Bytes per read from the file, and per send: large reads keep the server's reads large too.
CHUNK_SIZE = 1024 * 1024
CONNECT_TIMEOUT = 10.0
#: Longest silence from the server; an upload's answer waits for the server's final fsync.
READ_TIMEOUT = 300.0

Progress = Callable[[int], None]


class ClientError(Exception):
    """A request that did not succeed. ``str(err)`` is the one-line reason to show."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.message = printable(" ".join(message.split()))
        self.status = status
        super().__init__(self.message)


class TransportError(ClientError):
    """No answer: the connection was refused, reset or timed out. Worth another try."""


#: Answers that say "not now" rather than "no": a lease still held by a request that is
#: gone (423), a server restarting or overloaded behind its proxy (5xx but 501).
RETRY_STATUSES = frozenset({423, 429, 500, 502, 503, 504})


class GaveUp(ClientError):
    """Tries ran out on a failure that may pass: the upload can be continued later."""


def retryable(exc: ClientError) -> bool:
    return isinstance(exc, TransportError) or exc.status in RETRY_STATUSES


def resumable_failure(exc: ClientError) -> bool:
    """Whether what is on the server is still worth keeping after ``exc``."""
    return isinstance(exc, GaveUp) or retryable(exc)


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``attempts`` tries in a row that make no progress, ``base`` seconds before the
    second, doubling up to ``cap``."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def pause(self, failures: int) -> None:
        """Wait before the try after ``failures`` failed ones in a row."""
        self.sleep(min(self.base * 2 ** (failures - 1), self.cap))


_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` with each control and format character (ESC, CSI, BEL, CR, bidi controls)
    shown as ``?``: what a server says is printed, and never drives the terminal."""
    return "".join("?" if unicodedata.category(c) in _UNPRINTABLE else c for c in text)


@dataclass(frozen=True)
class UploadOptions:
    """What a drop may be given at upload; ``None`` leaves it to the server."""

    expires: str | None = None
    max_downloads: int | None = None
    slug: str | None = None
    #: Sent only in a header, never in a URL or metadata that may be logged or shown back.
    password: str | None = None

    def query(self) -> dict[str, str]:
        """The options as the server's upload fields (query, tus metadata, JSON)."""
        values = {"expires": self.expires, "max_downloads": self.max_downloads,
                  "slug": self.slug}
        return {name: str(value) for name, value in values.items() if value is not None}

    def headers(self) -> dict[str, str | bytes]:
        """The password header, UTF-8 as the server reads it."""
        if self.password is None:
            return {}
        return {PASSWORD_HEADER: self.password.encode("utf-8")}


@dataclass
class Source:
    """An open binary stream to upload, the filename to record, and its size when known
    (a regular file). Without a size the upload is sent chunked."""

    stream: IO[bytes]
    filename: str | None
    size: int | None

    @classmethod
    def open(cls, path: str, filename: str | None = None) -> Source:
        """A file by path: its size from ``fstat`` when it is a regular file (a pipe or a
        device says 0 and is sent chunked). The caller closes :attr:`stream`."""
        stream = open(path, "rb")
        info = os.fstat(stream.fileno())
        size = info.st_size if stat.S_ISREG(info.st_mode) else None
        return cls(stream, filename or os.path.basename(path), size)


class SizedBody:
    """A body of known length read a chunk at a time. ``requests`` sends an iterable with a
    ``__len__`` as ``Content-Length`` plus the chunks as they come, so the file is never
    held whole. Exactly ``size`` bytes are sent: more would corrupt the request, fewer
    would leave the server waiting. ``read(n)`` gives the next bytes, at most ``n``."""

    def __init__(self, read: Callable[[int], bytes], size: int, on_progress: Progress) -> None:
        # Not named ``read``: requests would take the body for a file and bypass __iter__.
        self._read, self.size, self.on_progress = read, size, on_progress

    @classmethod
    def at(cls, fd: int, offset: int, size: int, on_progress: Progress) -> SizedBody:
        """``size`` bytes of the open file ``fd`` from ``offset``, read with ``pread``:
        several bodies may read one descriptor at once."""
        position = offset

        def read(n: int) -> bytes:
            nonlocal position
            chunk = os.pread(fd, n, position)
            position += len(chunk)
            return chunk

        return cls(read, size, on_progress)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        while sent < self.size:
            chunk = self._read(min(CHUNK_SIZE, self.size - sent))
            if not chunk:
                raise ClientError(f"the file shrank to {sent} bytes while it was being sent "
                                  f"({self.size} expected)")
            sent += len(chunk)
            yield chunk
            self.on_progress(sent)


def _chunked_body(source: Source, on_progress: Progress) -> Iterator[bytes]:
    """A body of unknown length: ``requests`` sends a generator chunked."""
    # read1 hands over what a pipe has now, so a slow producer's bytes go out as they come.
    read = getattr(source.stream, "read1", source.stream.read)
    sent = 0
    while chunk := read(CHUNK_SIZE):
        sent += len(chunk)
        yield chunk
        on_progress(sent)


class _BearerToken(requests.auth.AuthBase):
    """An upload token as ``Authorization: Bearer``. Given to requests as the request's auth,
    not as a header: a ``~/.netrc`` entry for the host would replace the header."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def ignore(_sent: int) -> None:
    pass


class Client:
    """One teledrop server at ``server`` (``http://host[:port][/prefix]``)."""

    def __init__(self, server: str = DEFAULT_SERVER, upload_token: str | None = None,
                 session: requests.Session | None = None) -> None:
        self.server = normalize_server(server)
        self.upload_token = upload_token or None
        self.session = session or requests.Session()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def upload(self, source: Source, options: UploadOptions = UploadOptions(),
               on_progress: Progress | None = None) -> dict[str, Any]:
        """Send one file; the drop as JSON (with its ``delete_token``). ``on_progress``
        gets the count of bytes sent so far after each chunk."""
        on_progress = on_progress or ignore
        path = "/" + quote(source.filename, safe="") if source.filename else "/"
        body: Any
        if source.size == 0:
            body = b""  # requests would send an empty iterable chunked; say 0 instead
        elif source.size is not None:
            body = SizedBody(source.stream.read, source.size, on_progress)
        else:
            body = _chunked_body(source, on_progress)
        response = self.request("PUT", path, data=body, auth=self.auth, params=options.query(),
                                 headers={"Content-Type": "application/octet-stream",
                                          **options.headers()})
        return json_of(response)

    @property
    def auth(self) -> requests.auth.AuthBase | None:
        """The upload token, for requests that create an upload."""
        return _BearerToken(self.upload_token) if self.upload_token else None

    def info(self, slug: str) -> dict[str, Any]:
        """The drop's metadata (never its delete token)."""
        return json_of(self.request("GET", f"/api/drops/{quote(slug, safe='')}"))

    def lookup(self, slug: str) -> str | None:
        """What the server says of ``slug``'s metadata: ``"drop"`` (its metadata, or
        teledrop's refusal to show it, such as a password), ``"unknown"`` (teledrop's 404),
        or ``None`` (no answer, or not one of teledrop's)."""
        try:
            response = self.session.get(f"{self.server}/api/drops/{quote(slug, safe='')}",
                                        headers={"Accept": "application/json"},
                                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                                        allow_redirects=False)
            body = response.json()
        except (requests.RequestException, ValueError):
            return None
        if response.status_code == 200:
            return "drop" if isinstance(body, dict) and body.get("slug") == slug else None
        error = body.get("error") if isinstance(body, dict) else None
        if not (isinstance(error, dict) and isinstance(error.get("code"), str)):
            return None
        return "unknown" if response.status_code == 404 else "drop"

    def delete(self, slug: str, delete_token: str) -> None:
        self.request("DELETE", f"/{quote(slug, safe='')}",
                      headers={"X-Delete-Token": delete_token})

    def request(self, method: str, target: str,
                headers: Mapping[str, str | bytes] | None = None,
                **kwargs: Any) -> requests.Response:
        """``method`` on ``target``, a path on the server or an absolute URL it gave (a
        tus upload's). :raises TransportError: no answer. :raises ClientError: an error
        status, with the server's reason."""
        # JSON errors carry the one-line reason in a field; plain text could be anything
        # a proxy in front of teledrop decided to say.
        all_headers = {"Accept": "application/json", **(headers or {})}
        try:
            # A streamed body cannot be sent twice, so a redirect is reported, not followed.
            url = target if "://" in target else self.server + target
            response = self.session.request(method, url, headers=all_headers,
                                            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                                            allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            raise TransportError(f"{self.server}: {reason_of(exc)}") from None
        if 300 <= response.status_code < 400:
            where = response.headers.get("Location", "elsewhere")
            raise ClientError(f"{self.server} redirects to {where}: use that as the server",
                              response.status_code)
        if response.status_code >= 400:
            raise ClientError(error_message(response), response.status_code)
        return response


def normalize_server(server: str) -> str:
    """``server`` without a trailing slash, ``http://`` assumed when no scheme is given."""
    server = server.strip()
    if "://" not in server:
        server = "http://" + server
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientError(f"not an http(s) server address: {server!r}")
    return server.rstrip("/")


def link_readings(link: str, server: str) -> list[tuple[str, str]]:
    """Every ``(server, slug)`` that ``link`` can mean by teledrop's path rules, the
    shortest server path first: a bare slug is on ``server``; on ``server`` the segment
    after it is the slug, whatever follows (``{server}/{slug}/{name}``). Elsewhere the
    server may sit under a path and a name may follow the slug, so each segment that
    could be a slug is one reading."""
    link = link.strip()
    if "://" not in link:
        slug = link.strip("/")
        if not slug or "/" in slug:
            raise ClientError(f"not a link or a slug: {link!r}")
        return [(normalize_server(server), slug)]
    server = normalize_server(server)
    parts = urlsplit(link)
    bare = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
    if bare.startswith(server + "/"):
        return [(server, bare[len(server) + 1:].split("/", 1)[0])]
    host = normalize_server(f"{parts.scheme}://{parts.netloc}")
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    readings = [(host + "".join("/" + s for s in segments[:i]), segment)
                for i, segment in enumerate(segments) if could_be_slug(segment)]
    if not readings:
        raise ClientError(f"no slug in the link {link!r}")
    return readings


def locate(link: str, server: str) -> tuple[str, str]:
    """The ``(server, slug)`` that ``link`` names, asking the server when the link can be
    read more than one way (``https://host/a/b``: the drop ``a`` and its name ``b``, or the
    drop ``b`` of a teledrop under ``/a``).

    Each reading is asked for its metadata, never its bytes, shortest server path first.
    That order is what makes asking safe: a wrong reading before the right one asks a path
    outside teledrop; one after a drop that teledrop does not know asks under a slug
    that has no drop. The first reading teledrop answers for a drop (its metadata, or a
    refusal such as a password) wins; else the first it says it does not know."""
    readings = link_readings(link, server)
    if len(readings) == 1:
        return readings[0]
    unknown = None
    with requests.Session() as session:
        for base, slug in readings:
            answer = Client(base, session=session).lookup(slug)
            if answer == "drop":
                return base, slug
            if answer == "unknown" and unknown is None:
                unknown = (base, slug)
    return unknown or readings[0]


def error_message(response: requests.Response) -> str:
    """The server's one-line reason from its JSON error body; else the first line of a
    plain-text body; else the status (an HTML error page from a proxy says nothing
    worth a line)."""
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = None
        if response.headers.get("Content-Type", "").startswith("text/plain"):
            lines = response.text.strip().splitlines()
            message = lines[0][:200] if lines else None
    if not isinstance(message, str) or not message.strip():
        message = f"HTTP {response.status_code} {response.reason or ''}".strip()
    return message


def json_of(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ClientError(f"the server answered {response.status_code} without a JSON body: "
                          "is this a teledrop server?", response.status_code)
    return data


def reason_of(exc: BaseException) -> str:
    """The root cause of a transport error in a few words (``Connection refused``), not
    urllib3's nested repr of pools and connection objects."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        if isinstance(current, TimeoutError) or type(current).__name__.endswith("Timeout"):
            return "timed out"
        linked = [getattr(current, "reason", None), current.__cause__, current.__context__,
                  *current.args]
        pending += [e for e in linked if isinstance(e, BaseException)]
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# --- progress on a terminal ---------------------------------------------------------------

class ProgressLine:
    """One self-overwriting line on a terminal: name, bar, percent, bytes sent, speed and
    time left (the last two only with a known total). Redrawn at most every ``interval``
    seconds, and once more by :meth:`finish`."""

    #: The widest the bar gets; it narrows on a narrow terminal.
    BAR_WIDTH = 30
    #: A longer label loses its start, so that the figures keep their place.
    LABEL_WIDTH = 20

    def __init__(self, stream: TextIO, label: str, total: int | None,
                 interval: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        if len(label) > self.LABEL_WIDTH:
            label = "..." + label[3 - self.LABEL_WIDTH:]
        self.stream, self.label, self.total = stream, label, total
        self.interval, self.clock = interval, clock
        self.started = clock()
        self.done = 0
        #: Bytes already on the server when this run began: not counted in the speed.
        self.baseline = 0
        self._drawn_at: float | None = None
        self._width = 0
        self.update(0)

    def update(self, done: int) -> None:
        self.done = done
        at = self.clock()
        if self._drawn_at is None or at - self._drawn_at >= self.interval:
            self._draw(at)

    def begin_at(self, done: int) -> None:
        """Start from ``done`` bytes a previous run already sent."""
        self.baseline = done
        self.update(done)

    def print_above(self, text: str) -> None:
        """``text`` on a line of its own where the bar was, then the bar below it."""
        self.stream.write("\r" + text.ljust(self._width) + "\n")
        self._draw(self.clock())

    def finish(self) -> None:
        """The last state, then a newline so later output starts on a line of its own."""
        self._draw(self.clock())
        self.stream.write("\n")
        self.stream.flush()

    def render(self, at: float, columns: int = 80) -> str:
        """The line for the state at time ``at``, cut to ``columns - 1``. Every figure has
        a fixed width, so nothing jumps; the bar takes the room that is left."""
        elapsed = max(at - self.started, 1e-6)
        speed = max(self.done - self.baseline, 0) / elapsed
        rate = f"{format_progress_size(speed):>10}/s"
        if self.total is None:
            return f"{self.label}  {format_progress_size(self.done):>10}  {rate}"[:columns - 1]
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        # Sent and total in the total's unit: "96.0/256.0 MiB", as wide at 0% as at 100%.
        unit, factor = binary_unit(self.total)
        total = f"{self.total / factor:.{0 if factor == 1 else 1}f}"
        done = f"{self.done / factor:>{len(total)}.{0 if factor == 1 else 1}f}"
        left = (self.total - self.done) / speed if speed > 0 and fraction < 1 else None
        eta = f"ETA {format_eta(left)}" if left is not None else ""
        figures = f"{int(fraction * 100):3d}%  {done}/{total} {unit}  {rate}  {eta:<9}"
        room = min(columns - 1 - len(self.label) - len(figures) - 5, self.BAR_WIDTH)
        if room < 5:
            return f"{self.label}  {figures}"[:columns - 1]
        filled = int(fraction * room)
        return f"{self.label}  [{'#' * filled}{'-' * (room - filled)}] {figures}"

    def _draw(self, at: float) -> None:
        self._drawn_at = at
        line = self.render(at, _columns(self.stream))
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        return 80
