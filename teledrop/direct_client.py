"""``teledrop upload`` by direct upload (``/api/direct-uploads``): the file goes in parts
straight to the server's bucket through the presigned URLs the server hands out, several
parts at once, and the server then checks the parts and records the drop.

Each part is read from the file by offset (``pread``) a chunk at a time by one of a
bounded pool of threads, so memory stays flat whatever the size and however many parts
there are. A failed part is tried again with exponential backoff. The upload's id, part
URLs and the ETag of every stored part are kept in :mod:`teledrop.upload_state`: after a
failure, running the same command again sends only the parts still missing, then completes.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import requests

from teledrop.client import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    ClientError,
    GaveUp,
    Progress,
    SizedBody,
    TransportError,
    error_message,
    json_of,
    reason_of,
    resumable_failure,
    retryable,
)
from teledrop.transfer import Transfer, with_retries

PREFIX = "/api/direct-uploads"
DEFAULT_PARALLEL = 4
#: Answers meaning "this server takes no direct uploads" (an older one, or a storage
#: that cannot presign): another way of uploading is tried.
UNAVAILABLE = frozenset({404, 405, 501})


class DirectUnavailable(Exception):
    """The server does not offer direct uploads."""


@dataclass(frozen=True)
class Plan:
    """A direct upload as the server created it."""

    id: str
    part_size: int
    urls: dict[int, str]
    expires_at: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Plan:
        try:
            urls = {int(part["number"]): str(part["url"]) for part in data["parts"]}
            plan = cls(str(data["id"]), int(data["part_size"]), urls, str(data["expires_at"]))
        except (KeyError, TypeError, ValueError):
            raise ClientError("the server's direct upload makes no sense: is this a "
                              "teledrop server?") from None
        if plan.part_size <= 0 or not plan.urls:
            raise ClientError("the server's direct upload has no parts")
        return plan

    def record(self) -> dict[str, Any]:
        return {"kind": "direct", "id": self.id, "part_size": self.part_size,
                "parts": [{"number": n, "url": u} for n, u in sorted(self.urls.items())],
                "expires_at": self.expires_at}

    def expired(self) -> bool:
        try:
            at = datetime.fromisoformat(self.expires_at.replace("Z", "+00:00"))
        except ValueError:
            return True
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        return at <= datetime.now(timezone.utc)

    def span(self, number: int, size: int) -> tuple[int, int]:
        """The offset and length of part ``number`` of a file of ``size`` bytes."""
        offset = (number - 1) * self.part_size
        return offset, max(0, min(self.part_size, size - offset))


@dataclass
class _Tally:
    """Bytes sent over all parts, for one progress bar (called from every thread)."""

    on_progress: Progress
    done: int = 0
    running: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def part(self, number: int, sent: int) -> None:
        with self.lock:
            self.running[number] = sent
            self.on_progress(self.done + sum(self.running.values()))

    def finished(self, number: int, length: int) -> None:
        with self.lock:
            self.running.pop(number, None)
            self.done += length
            self.on_progress(self.done + sum(self.running.values()))


@dataclass(kw_only=True)
class DirectUpload(Transfer):
    """One file sent by direct upload."""

    fd: int
    fields: dict[str, Any]
    parallel: int = DEFAULT_PARALLEL
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> dict[str, Any]:
        """Send the missing parts and complete; the drop as JSON with its delete token.
        :raises DirectUnavailable: / :raises ClientError:"""
        plan, etags = self._resumed()
        if plan is None:
            plan, etags = self._create(), {}
            self._save(plan, etags)
        else:
            self.notify(f"continuing an earlier upload: {len(etags)} of {len(plan.urls)} "
                        "parts are on the server")
        try:
            self._send_parts(plan, etags)
        except ClientError as exc:
            if not resumable_failure(exc):
                self._abort(plan)
            raise
        return self._complete(plan, etags)

    def _resumed(self) -> tuple[Plan | None, dict[int, str]]:
        record = self.state.load() if self.state else None
        if not record or record.get("kind") != "direct":
            return None, {}
        try:
            plan = Plan.parse(record)
            etags = {int(n): str(e) for n, e in record.get("etags", {}).items()}
        except (ClientError, AttributeError, ValueError):
            return None, {}
        return (None, {}) if plan.expired() else (plan, etags)

    def _create(self) -> Plan:

        try:
            # Nothing is lost yet: a failure here is reported at once.
            response = self.client.request("POST", PREFIX, json=self.fields, headers=self.headers,
                                           auth=self.client.auth)
        except ClientError as exc:
            if exc.status in UNAVAILABLE:
                raise DirectUnavailable(exc.message) from None
            raise
        return Plan.parse(json_of(response))

    def _save(self, plan: Plan, etags: dict[int, str]) -> None:
        if self.state:
            self.state.save({**plan.record(), "etags": {str(n): e for n, e in etags.items()}})

    def _send_parts(self, plan: Plan, etags: dict[int, str]) -> None:
        """Every part ``etags`` lacks, ``parallel`` at a time; ``etags`` (and the state
        file) gain each stored part as it is done. On the first part that fails for good
        no new part starts; the ones running finish, and are kept."""
        tally = _Tally(self.on_progress)
        tally.done = sum(plan.span(number, self.size)[1] for number in etags)
        self.on_start(tally.done)
        missing = sorted(set(plan.urls) - set(etags))
        if not missing:
            return
        pool = ThreadPoolExecutor(min(max(1, self.parallel), len(missing)),
                                  thread_name_prefix="teledrop-part")
        try:
            futures = [pool.submit(self._send_part, plan, n, etags, tally) for n in missing]
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            # On a failure or a Ctrl-C no part starts; those running finish and are kept.
            pool.shutdown(wait=True, cancel_futures=True)
        failure = next((f.exception() for f in futures
                        if not f.cancelled() and f.exception() is not None), None)
        if failure is None:
            return
        if isinstance(failure, ClientError) and retryable(failure):
            left = len(plan.urls) - len(etags)
            raise GaveUp(f"{failure.message}; {left} of {len(plan.urls)} parts are "
                                "not on the server yet: run the same command again to send "
                                "only those", failure.status) from None
        raise failure

    def _send_part(self, plan: Plan, number: int, etags: dict[int, str],
                   tally: _Tally) -> None:
        offset, length = plan.span(number, self.size)
        failures = 0
        while True:
            try:
                etag = self._put(plan.urls[number], offset, length,
                                 lambda sent: tally.part(number, sent))
                break
            except ClientError as exc:
                tally.part(number, 0)
                failures += 1
                if not retryable(exc) or failures >= self.policy.attempts:
                    raise
                with tally.lock:  # the bar is drawn from every thread, one at a time
                    self.notify(f"part {number}: {exc.message}; trying again")
                self.policy.pause(failures)
        with self._lock:
            etags[number] = etag
            self._save(plan, etags)
        tally.finished(number, length)

    def _put(self, url: str, offset: int, length: int, on_progress: Progress) -> str:
        """One part to the bucket. Its URL carries the signature: no token goes with it."""
        body = SizedBody.at(self.fd, offset, length, on_progress)
        try:
            # A connection per part: a part is many MiB, and nothing is left open after.
            with requests.Session() as session:
                response = session.put(url, data=body if length else b"",
                                       timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                                       allow_redirects=False, auth=_signed_already)
        except requests.RequestException as exc:
            raise TransportError(f"the bucket: {reason_of(exc)}") from None
        if response.status_code != 200:
            raise ClientError(f"the bucket refused a part: {error_message(response)}",
                              response.status_code)
        etag = response.headers.get("ETag")
        if not etag:
            raise ClientError("the bucket stored a part without an ETag")
        return etag

    def _complete(self, plan: Plan, etags: dict[int, str]) -> dict[str, Any]:
        parts = [{"number": n, "etag": etags[n]} for n in sorted(etags)]

        def complete() -> requests.Response:
            return self.client.request("POST", f"{PREFIX}/{plan.id}/complete",
                                       json={"parts": parts})

        try:
            drop = json_of(with_retries(self.policy, self.notify, "completing the upload",
                                        complete))
        except ClientError as exc:
            if not retryable(exc):  # refused: the server aborted it, nothing is left
                self.forget()
                raise ClientError(f"the server refused the upload: {exc.message}",
                                  exc.status) from None
            raise
        self.forget()
        return drop

    def _abort(self, plan: Plan) -> None:
        self.forget()
        try:
            self.client.request("DELETE", f"{PREFIX}/{plan.id}")
        except ClientError:
            pass


def _signed_already(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """A part URL is its own credential: no ``~/.netrc`` entry may add an
    ``Authorization`` header, which the bucket would refuse alongside the signature."""
    return request
