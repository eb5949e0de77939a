"""Driving core's upload without HTTP: a receive function that streams like a multipart
body."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from teledrop.core.upload import (
    Upload,
)


Receive = Callable[[Upload], None]


def sending(data: bytes | Iterable[bytes] = b"hello", *, filename: str | None = "a.txt",
            content_type: str | None = None, fields: Iterable[tuple[str, str]] = (),
            fields_after: Iterable[tuple[str, str]] = ()) -> Receive:
    """A receive function that streams like a multipart body: fields, the file in chunks,
    then more fields."""
    chunks = [data] if isinstance(data, bytes) else list(data)

    def receive(upload: Upload) -> None:
        for name, value in fields:
            upload.set_field(name, value)
        writer = upload.open_file(filename, content_type)
        for chunk in chunks:
            writer.write(chunk)
        for name, value in fields_after:
            upload.set_field(name, value)

    return receive
