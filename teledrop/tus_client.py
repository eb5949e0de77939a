"""``teledrop upload`` over tus 1.0 (``/api/uploads``): an upload that goes on by itself
after a dropped connection, and after a crash when the same command runs again.

A small client of its own rather than tuspy: tuspy reads each chunk into memory before it
sends it (with its default chunk size, the whole file), reports no progress within a
chunk, waits a fixed delay between its retries and remembers uploads in a TinyDB file
keyed by a fingerprint it computes by reading the file. Here each ``PATCH`` streams the
rest of the file from its offset a chunk at a time (memory stays flat whatever the size),
the progress bar moves with every chunk, retries back off exponentially and stop after a
bounded number of tries without progress, and the upload URL is kept in
:mod:`teledrop.upload_state`, keyed by the file's path, size and modification time.

After a failure the client asks the server where the upload stands (``HEAD``) and sends
from there: a byte the server kept is never sent twice.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urljoin

import requests

from teledrop.client import (
    CONNECT_TIMEOUT,
    Client,
    ClientError,
    GaveUp,
    SizedBody,
    json_of,
    resumable_failure,
    retryable,
)
from teledrop.transfer import Transfer, with_retries

PREFIX = "/api/uploads"
TUS_VERSION = "1.0.0"
TUS = {"Tus-Resumable": TUS_VERSION}
OFFSET_STREAM = "application/offset+octet-stream"


class TusUnavailable(Exception):
    """The server speaks tus but cannot take this upload that way (its storage cannot
    stage resumable uploads: ``501``): send it in one request instead."""


def offers_tus(client: Client) -> bool:
    """Whether ``OPTIONS /api/uploads`` says the server is a tus 1.0 server that creates
    uploads. No answer, or any other answer, is no."""
    try:
        response = client.session.options(client.server + PREFIX, headers=TUS,
                                          timeout=(CONNECT_TIMEOUT, 30), allow_redirects=False)
    except requests.RequestException:
        return False
    versions = [v.strip() for v in response.headers.get("Tus-Version", "").split(",")]
    extensions = [e.strip() for e in response.headers.get("Tus-Extension", "").split(",")]
    return response.status_code in (200, 204) and TUS_VERSION in versions \
        and "creation" in extensions


def encode_metadata(values: dict[str, str]) -> str:
    """``Upload-Metadata``: ``key base64(value)`` pairs, comma separated."""
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}"
                    for key, value in values.items())


@dataclass(kw_only=True)
class TusUpload(Transfer):
    """One file sent over tus."""

    stream: IO[bytes]
    metadata: dict[str, str]

    def run(self) -> dict[str, Any]:
        """Send the file (continuing the upload the state file names, if it still
        exists); the drop as JSON, with its ``delete_token`` when the server's last answer
        arrived. :raises TusUnavailable: / :raises ClientError:"""
        record = self.state.load() if self.state else None
        url = record.get("url") if record and record.get("kind") == "tus" else None
        offset = self._offset(url) if isinstance(url, str) else None
        if offset is None:
            url, offset = self._create(), 0
            if self.state:
                self.state.save({"kind": "tus", "url": url})
        else:
            self.notify(f"continuing an earlier upload from byte {offset}")
        assert isinstance(url, str)
        self.on_start(offset)
        try:
            drop = self._send(url, offset)
        except ClientError as exc:
            if resumable_failure(exc):
                raise  # the state file stays: running the command again continues
            self._forget(url)
            raise
        self.forget()
        return drop

    def _create(self) -> str:
        headers = {**self.headers, **TUS, "Upload-Length": str(self.size),
                   "Upload-Metadata": encode_metadata(self.metadata)}
        try:
            # Nothing is lost yet: a failure here is reported at once.
            response = self.client.request("POST", PREFIX, headers=headers,
                                           auth=self.client.auth)
        except ClientError as exc:
            if exc.status == 501:
                raise TusUnavailable(exc.message) from None
            raise
        location = response.headers.get("Location")
        if not location:
            raise ClientError("the server created the upload without a Location: is this a "
                              "teledrop server?", response.status_code)
        return urljoin(self.client.server + PREFIX, location)

    def _offset(self, url: str, retry: bool = True) -> int | None:
        """Where the upload stands by the server; ``None`` when it is gone (expired)."""
        def head() -> requests.Response:
            return self.client.request("HEAD", url, headers=TUS)

        try:
            response = with_retries(self.policy, self.notify, "asking where the upload stands",
                                    head) if retry else head()
        except ClientError as exc:
            if exc.status == 404:
                return None
            raise
        value = response.headers.get("Upload-Offset", "")
        if not value.isdigit() or response.headers.get("Upload-Length") != str(self.size):
            raise ClientError("the server's answer about the upload makes no sense: "
                              f"Upload-Offset {value!r} of "
                              f"{response.headers.get('Upload-Length')!r}")
        return int(value)

    def _send(self, url: str, offset: int) -> dict[str, Any]:
        """PATCH the rest from ``offset`` until the server has it all; after a failure,
        back off, HEAD, and go on from the offset it gives. Tries that move nothing
        forward are counted, and only those: a long upload over a flaky line goes on."""
        failures, best = 0, offset
        known: int | None = offset
        while True:
            try:
                if known is None:
                    known = self._offset(url, retry=False)  # this loop does the retrying
                    if known is None:
                        raise ClientError("the upload is gone from the server (it expired?): "
                                          "run the command again to start it afresh", 404)
                    if known > best:
                        failures, best = 0, known
                if known == self.size:
                    return self._finished(url, None)
                response = self._patch(url, known)
            except ClientError as exc:
                if not (retryable(exc) or exc.status == 409):
                    raise
                failures += 1
                if failures >= self.policy.attempts:
                    raise GaveUp(
                        f"{exc.message}; gave up after {failures} tries in a row (the "
                        f"server had {best} of {self.size} bytes when last asked): run the "
                        "same command again to continue where it stopped",
                        exc.status) from None
                self.notify(f"{exc.message}; continuing from the server's offset")
                self.policy.pause(failures)
                known = None
                continue
            reached = response.headers.get("Upload-Offset", "")
            if reached == str(self.size):
                return self._finished(url, response)
            if not reached.isdigit() or int(reached) <= known:
                raise ClientError(f"the server took a PATCH from byte {known} without "
                                  f"moving the upload on (Upload-Offset {reached!r})")
            known = best = int(reached)  # it kept less than was sent: send the rest
            failures = 0

    def _patch(self, url: str, offset: int) -> requests.Response:
        self.stream.seek(offset)
        self.on_progress(offset)
        body = SizedBody(self.stream.read, self.size - offset,
                         lambda sent: self.on_progress(offset + sent))
        return self.client.request("PATCH", url, data=body if self.size > offset else b"",
                                   headers={**TUS, "Upload-Offset": str(offset),
                                            "Content-Type": OFFSET_STREAM})

    def _finished(self, url: str, response: requests.Response | None) -> dict[str, Any]:
        """The drop the completed upload became. Its delete token comes only with the
        answer to the last PATCH: when that answer was lost, there is none to give."""
        drop = with_retries(self.policy, self.notify, "reading the drop",
                            lambda: json_of(self.client.request("GET", url)))
        token = response.headers.get("X-Delete-Token") if response is not None else None
        if token:
            drop["delete_token"] = token
        else:
            self.notify("the server's last answer was lost: the drop is complete, but its "
                        "delete token is unknown")
        return drop

    def _forget(self, url: str) -> None:
        """A refused upload is of no further use: remove it from the server (best effort)
        and from the state file."""
        self.forget()
        try:
            self.client.request("DELETE", url, headers=TUS)
        except ClientError:
            pass
