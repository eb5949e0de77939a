"""What the resumable ways of sending a file (:mod:`teledrop.tus_client`,
:mod:`teledrop.direct_client`) share: the file's server, size and options, where progress
and messages go, where the upload is remembered, and how failures are tried again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from teledrop.client import Client, ClientError, Progress, RetryPolicy, ignore, retryable
from teledrop.upload_state import StateFile

T = TypeVar("T")
#: Where a line for the user goes (above the progress bar, when there is one).
Notify = Callable[[str], None]


@dataclass(kw_only=True)
class Transfer:
    """One file on its way to ``client``'s server."""

    client: Client
    size: int
    #: Sent with the creation only (the password).
    headers: dict[str, str | bytes]
    on_progress: Progress
    state: StateFile | None
    policy: RetryPolicy
    notify: Notify
    #: Told how many bytes the server already had when this run started.
    on_start: Progress = ignore

    def forget(self) -> None:
        """The upload is done with (finished or refused): nothing left to continue."""
        if self.state:
            self.state.remove()


def with_retries(policy: RetryPolicy, notify: Notify, what: str, call: Callable[[], T]) -> T:
    """``call()``, tried again after a failure that may pass (no answer, 423, 5xx)."""
    failures = 0
    while True:
        try:
            return call()
        except ClientError as exc:
            failures += 1
            if not retryable(exc) or failures >= policy.attempts:
                raise
            notify(f"{what}: {exc.message}; trying again")
            policy.pause(failures)
