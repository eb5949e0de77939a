"""How ``teledrop upload`` sends a file: by direct upload when the server offers it (the
bytes go straight to its bucket, several parts at once), else over tus when it offers that
(resumable), else in one request (``PUT``). A file that cannot be resumed — stdin, a pipe,
an empty file, or any file with resuming turned off — always goes in one request.

What the server offers is learnt once per server, from its first answer, and remembered
for the files that follow. An upload the state file says was begun one way is continued
that way.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from dataclasses import dataclass, field
from typing import IO, Any

from teledrop.client import (
    Client,
    Progress,
    RetryPolicy,
    Source,
    UploadOptions,
    ignore,
)
from teledrop.direct_client import DEFAULT_PARALLEL, DirectUnavailable, DirectUpload
from teledrop.transfer import Notify
from teledrop.tus_client import TusUnavailable, TusUpload, offers_tus
from teledrop.upload_state import StateFile, UploadKey


@dataclass
class Uploader:
    client: Client
    resume: bool = True
    parallel: int = DEFAULT_PARALLEL
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    notify: Notify = lambda _message: None
    #: What the server offers, once known.
    direct: bool | None = None
    tus: bool | None = None

    def upload(self, source: Source, options: UploadOptions, on_progress: Progress = ignore,
               on_start: Progress = ignore, path: str | None = None) -> dict[str, Any]:
        """Send ``source`` (the file at ``path``, when it is one); the drop as JSON."""
        if not self.resume or path is None or not source.size or not _regular(source.stream):
            return self.client.upload(source, options, on_progress)
        filename = source.filename or os.path.basename(path)
        fields = {"filename": filename, **options.query()}
        state = StateFile(UploadKey.of(self.client.server, path, fields))
        record = state.load()
        begun = record.get("kind") if record else None
        if begun != "tus" and self.direct is not False:
            try:
                drop = self._direct(source, fields, options, state, on_progress, on_start)
            except DirectUnavailable:
                self.direct = False
            else:
                self.direct = True
                return drop
        if self.tus is None:
            self.tus = offers_tus(self.client)
        if self.tus:
            try:
                return TusUpload(stream=source.stream, metadata=fields,
                                 **self._transfer(source.size, options, state, on_progress,
                                                  on_start)).run()
            except TusUnavailable:
                self.tus = False
        source.stream.seek(0)
        return self.client.upload(source, options, on_progress)

    def _direct(self, source: Source, fields: dict[str, str], options: UploadOptions,
                state: StateFile, on_progress: Progress, on_start: Progress,
                ) -> dict[str, Any]:
        assert source.size is not None
        body: dict[str, Any] = {**fields, "size": source.size}
        content_type = mimetypes.guess_type(fields["filename"])[0]
        if content_type:
            body["content_type"] = content_type
        if options.max_downloads is not None:
            body["max_downloads"] = options.max_downloads
        return DirectUpload(fd=source.stream.fileno(), fields=body, parallel=self.parallel,
                            **self._transfer(source.size, options, state, on_progress,
                                             on_start)).run()

    def _transfer(self, size: int, options: UploadOptions, state: StateFile,
                  on_progress: Progress, on_start: Progress) -> dict[str, Any]:
        """What either resumable way takes (:class:`~teledrop.transfer.Transfer`)."""
        return {"client": self.client, "size": size, "headers": options.headers(),
                "on_progress": on_progress, "state": state, "policy": self.policy,
                "notify": self.notify, "on_start": on_start}


def _regular(stream: IO[bytes]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False
