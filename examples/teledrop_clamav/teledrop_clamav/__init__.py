"""teledrop-clamav: stream every upload to ClamAV's clamd as it arrives, and refuse an
infected file before it is committed.

Configured in teledrop's config (or ``TELEDROP_PLUGINS__CLAMAV__<KEY>``)::

    [plugins.clamav]
    socket = "/run/clamav/clamd.ctl"   # clamd's LocalSocket (Debian's clamav-daemon)
    address = ""                       # "host:port" of clamd's TCPSocket, instead of socket
    timeout = "30s"                    # per socket operation, the verdict's wait included

Each upload gets its own connection to clamd and the ``INSTREAM`` command: every chunk of
the file goes to clamd as teledrop hashes and writes it (through
``teledrop_inspect_upload``), and before the commit the plugin waits for the verdict.

- An infected file is refused with ``422`` (code ``infected``) naming the signature, and
  nothing of it is kept.
- A file larger than clamd's ``StreamMaxLength`` (clamd.conf; Debian's default is 25 MiB)
  is refused with ``413`` as soon as clamd says so: raise that limit to the largest
  upload you accept.
- When clamd cannot be reached, times out or answers an error, the upload is refused with
  ``503`` (code ``scanner_unavailable``): a file is never let through unscanned.

A resumable (tus) upload sent in one request is scanned as it streams; one sent in several
requests is scanned once more at its completion, from its staged bytes (a clamd stream
cannot wait between requests).
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from teledrop import hookimpl
from teledrop.core.errors import ContentRefused, TooLarge, Unavailable
from teledrop.core.units import parse_duration

log = logging.getLogger(__name__)

#: The plugin's name whether it comes from its entry point or from
#: ``create_app(config, plugins=[teledrop_clamav])``: ``[plugins.clamav]`` configures it.
teledrop_plugin_name = "clamav"
NAME = teledrop_plugin_name

DEFAULT_SOCKET = "/run/clamav/clamd.ctl"
#: clamd answers at most a line: a signature name is short.
MAX_REPLY = 4096
END_OF_STREAM = struct.pack("!L", 0)


class Infected(ContentRefused):
    code, default_message = "infected", "the file is infected"


class ScannerUnavailable(Unavailable):
    code, default_message = "scanner_unavailable", "the virus scanner is unavailable"


@dataclass(frozen=True)
class ClamavSettings:
    """``[plugins.clamav]``."""

    socket: str = DEFAULT_SOCKET
    address: str = ""
    timeout: int = field(default=parse_duration("30s"), metadata={"parse": parse_duration})

    def check(self) -> dict[str, str]:
        problems = {}
        if self.address:
            try:
                parse_address(self.address)
            except ValueError as exc:
                problems["address"] = str(exc)
        elif not self.socket:
            problems["socket"] = "must name clamd's socket (or set address)"
        if self.timeout <= 0:
            problems["timeout"] = "must be more than 0 seconds"
        return problems

    @property
    def where(self) -> str:
        return self.address or self.socket


def parse_address(address: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:3310"`` for IPv6) as ``(host, port)``.

    :raises ValueError: naming what is wrong."""
    host, sep, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'must be "host:port" with a port from 1 to 65535, not {address!r}')
    return host, int(port)


class ClamdScan:
    """One upload's ``INSTREAM`` to clamd. It connects with the first byte (or at the
    finish, for an empty file), so an upload refused before its body costs clamd nothing."""

    def __init__(self, settings: ClamavSettings, filename: str) -> None:
        self.settings = settings
        self.filename = filename
        self._sock: socket.socket | None = None

    def update(self, chunk: memoryview) -> None:
        if not chunk.nbytes:
            return  # a chunk of length 0 is INSTREAM's end: the rest would go unscanned
        sock = self._connection()
        try:
            sock.sendall(struct.pack("!L", chunk.nbytes))
            sock.sendall(chunk)
        except OSError as exc:
            # clamd stops reading once the stream passes its StreamMaxLength, and says why
            self._verdict(sending_failed=exc)

    def finish(self) -> None:
        sock = self._connection()
        try:
            sock.sendall(END_OF_STREAM)
        except OSError as exc:
            # clamd may answer and close before this write returns (an empty stream): its
            # "OK" comes only once it has read the whole terminator, so it stands.
            self._verdict(sending_failed=exc, terminated=True)
            return
        self._verdict()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _connection(self) -> socket.socket:
        if self._sock is None:
            self._sock = self._connect()
            try:
                self._sock.sendall(b"zINSTREAM\0")
            except OSError as exc:
                raise self._unavailable(exc) from exc
        return self._sock

    def _connect(self) -> socket.socket:
        settings = self.settings
        try:
            if settings.address:
                return socket.create_connection(parse_address(settings.address),
                                                timeout=settings.timeout)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(settings.timeout)
                sock.connect(settings.socket)
            except BaseException:
                sock.close()
                raise
            return sock
        except OSError as exc:
            raise self._unavailable(exc) from exc

    def _verdict(self, sending_failed: OSError | None = None, terminated: bool = False) -> None:
        """Read clamd's answer and act on it: return for a clean file, raise otherwise.
        ``sending_failed``: the write that failed, mid-stream unless ``terminated`` (the
        last one, the end-of-stream mark)."""
        try:
            reply = self._read_reply()
        except OSError as exc:
            raise self._unavailable(sending_failed or exc) from exc
        if reply.endswith(" FOUND"):
            signature = reply.removeprefix("stream:").removesuffix(" FOUND").strip()
            log.warning("clamav: refused %r: %s", self.filename, signature)
            raise Infected(f"the file is infected: {signature}")
        if reply == "stream: OK" and (sending_failed is None or terminated):
            return
        if "size limit exceeded" in reply:
            raise TooLarge("the file is larger than the virus scanner accepts "
                           "(clamd's StreamMaxLength)")
        raise self._unavailable(f"clamd answered {reply!r}" if reply else sending_failed
                                or "clamd closed the connection without a verdict")

    def _read_reply(self) -> str:
        assert self._sock is not None
        data = b""
        while not data.endswith(b"\0") and len(data) < MAX_REPLY:
            piece = self._sock.recv(MAX_REPLY)
            if not piece:
                break
            data += piece
        return data.rstrip(b"\0").decode("utf-8", "replace").strip()

    def _unavailable(self, reason: object) -> ScannerUnavailable:
        log.warning("clamav: clamd at %s failed while scanning %r: %s", self.settings.where,
                    self.filename, reason)
        return ScannerUnavailable()


@hookimpl
def teledrop_config_schema() -> dict[str, type]:
    return {NAME: ClamavSettings}


@hookimpl
def teledrop_inspect_upload(filename: str, settings: Mapping[str, Any]) -> ClamdScan:
    return ClamdScan(settings[NAME], filename)
