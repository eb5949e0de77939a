"""The upload pipeline: authorise → options → stage (hash, count, limit) → commit.

A host (the WSGI app) calls :func:`create_drop` with a ``receive`` function that streams
the request body into the :class:`Upload` it is given: form fields through
:meth:`Upload.set_field`, the file's bytes through the writer from :meth:`Upload.open_file`.
Each byte is hashed, counted and written once, straight into the storage's staging area.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .content import BlobContent
from .drop import Drop, now
from .errors import InvalidFilename, InvalidOption, MalformedBody, SlugTaken, TooLarge
from .inspection import Digest, new_digest
from .interfaces import BlobWriter
from .options import clean_description, clean_title, parse_bool, \
    parse_expires, parse_max_downloads, unsafe_in_name
from .owners import identify
from .passwords import PASSWORD_HEADER, hash_password, header_password, refuse_in_query
from .service import Teledrop
from .space import Room
from .tokens import hash_token, new_token
from .units import format_size

log = logging.getLogger(__name__)

OPTION_NAMES = ("slug", "expires", "max_downloads", "title", "description", "private",
                "password")
#: Never accepted in the query string: it would land in access logs.
SECRET_OPTIONS = ("password",)
DEFAULT_FILENAME = "file"
MAX_FILENAME_BYTES = 255
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


@dataclass
class UploadRequest:
    """What a host knows about an upload before reading its body."""

    method: str
    headers: Mapping[str, str]
    query: Mapping[str, str] = field(default_factory=dict)
    remote_addr: str | None = None
    #: the file's size when the host knows it before reading (a raw body's Content-Length).
    declared_size: int | None = None
    #: a bound of the file's size known before reading (a multipart body's Content-Length).
    max_size: int | None = None
    #: the filename from the URL of a raw upload (multipart names it in the body).
    filename: str | None = None
    #: who the request's token names (set by teledrop before teledrop_authorize_upload).
    owner: str | None = None


@dataclass
class Options:
    slug: str | None = None
    expires: int | None = None
    max_downloads: int | None = None
    title: str = ""
    description: str = ""
    private: bool = False
    password_hash: str | None = None


def check_size(size: int | None, limit: int, framing: int = 0) -> None:
    """:raises TooLarge: when ``size`` bytes (``None``: not known yet) hold more than a file
    of ``limit`` bytes and ``framing`` bytes around it (a multipart body's boundaries)."""
    if size is not None and size > limit + framing:
        raise TooLarge(f"the upload exceeds the limit of {format_size(limit)}")


class IngestWriter:
    """The sink for a file's bytes: counts, enforces the size limit, hashes and inspects
    (its :class:`~.inspection.Digest`), writes."""

    def __init__(self, blob: BlobWriter, digest: Digest, limit: int, room: Room) -> None:
        self.blob = blob
        self.digest = digest
        self.limit = limit
        self.room = room
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        n = len(data)
        self.size += n
        check_size(self.size, self.limit)
        self.room.written(self.size)
        self.digest.update(data)
        self.blob.write(data)
        return n

    @property
    def hash(self) -> str:
        return self.digest.hash


class Upload:
    """One upload in progress. Use through :func:`create_drop`, which always closes it."""

    def __init__(self, service: Teledrop, request: UploadRequest) -> None:
        self.service = service
        self.request = request
        self.options = Options()
        self._given: dict[str, str] = {}
        self.writer: IngestWriter | None = None
        self.room = Room(service)
        self.filename = DEFAULT_FILENAME
        self.content_type = "application/octet-stream"

    def begin(self) -> None:
        """Everything that can refuse an upload before its body is read."""
        check_size(self.request.declared_size, self.service.config.limits.max_upload_size)
        self.request.owner = identify(self.service, self.request.headers)
        self.service.hook("teledrop_authorize_upload", request=self.request)
        bound = self.request.declared_size
        bound = self.request.max_size if bound is None else bound
        if bound is not None:
            self.room.reserve(bound)
        for name in SECRET_OPTIONS:
            refuse_in_query(self.request.query, name,
                            f"a form field or the {PASSWORD_HEADER} header")
        for name in OPTION_NAMES:
            value = self.request.query.get(name)
            if value is not None:
                self.set_field(name, value)
        password = self.request.headers.get(PASSWORD_HEADER)
        if password is not None:
            self.set_field("password", header_password(password))

    def set_field(self, name: str, value: str) -> None:
        """Take a form field or query parameter; unknown names are ignored."""
        if name not in OPTION_NAMES:
            return
        if name not in SECRET_OPTIONS:  # a password is taken byte for byte
            value = value.strip()
        if not value:  # an empty form field (a plain HTML form sends them) means "default"
            return
        if name in self._given:
            if self._given[name] != value:
                raise InvalidOption(f"{name} is given twice with different values")
            return
        self._given[name] = value
        limits = self.service.config.limits
        if name == "slug":
            self._take_slug(value)
        elif name == "expires":
            self.options.expires = parse_expires(value, limits.max_expires)
        elif name == "max_downloads":
            self.options.max_downloads = parse_max_downloads(value)
        elif name == "title":
            self.options.title = clean_title(value)
        elif name == "description":
            self.options.description = clean_description(value)
        elif name == "private":
            self.options.private = parse_bool("private", value)
            if self.options.private and self.request.owner is None:
                raise InvalidOption("a private drop needs an owner: upload with your token")
        elif name == "password":
            self.options.password_hash = hash_password(value)

    def given(self) -> dict[str, str]:
        """The options taken so far as they were given, secrets left out (a password
        lives on as ``options.password_hash``)."""
        return {name: value for name, value in self._given.items()
                if name not in SECRET_OPTIONS}

    def _take_slug(self, slug: str) -> None:
        self.service.hook("teledrop_check_slug", slug=slug, custom=True)
        # Refuse early to save the client's bandwidth; the UNIQUE constraint still decides.
        if self.service.metadata.get(slug) is not None:
            raise SlugTaken(f"the slug {slug!r} is already taken")
        self.options.slug = slug

    def open_file(self, filename: str | None, content_type: str | None) -> IngestWriter:
        """Stage the file part and return the writer its bytes go into."""
        if self.writer is not None:
            raise MalformedBody("send exactly one file")
        self.filename = clean_filename(filename)
        self.content_type = pick_content_type(content_type, self.filename)
        digest = new_digest(self.service, self.request, self.filename, self.content_type)
        try:
            blob = self.service.storage.stage(size_hint=self.size_hint())
        except BaseException:
            digest.close()
            raise
        self.writer = IngestWriter(blob, digest, self.service.config.limits.max_upload_size,
                                   self.room)
        return self.writer

    def size_hint(self) -> int | None:
        """About the most bytes the file can have, when the request says (storage sizes its
        buffers from it): its declared size, else the body's, within the upload limit."""
        known = self.request.declared_size
        if known is None:
            known = self.request.max_size
        if known is None:
            return None
        return min(known, self.service.config.limits.max_upload_size)

    def commit(self) -> Drop:
        """Let the inspectors finish, then run the compensation chain: publish, insert,
        then announce."""
        if self.writer is None:
            raise MalformedBody("no file: send it as a form part named 'file' or as a PUT body")
        self.writer.digest.finish()
        created = now()
        expires = self.options.expires or self.service.config.limits.default_expires
        token = new_token()
        drop = Drop(
            slug=self.options.slug or "",
            blob_id=self.writer.blob.blob_id,
            filename=self.filename,
            size=self.writer.size,
            content_type=self.content_type,
            hash=self.writer.hash,
            created_at=created,
            expires_at=created + expires,
            max_downloads=self.options.max_downloads,
            delete_token_hash=hash_token(token),
            custom_slug=self.options.slug is not None,
            owner=self.request.owner,
            title=self.options.title,
            description=self.options.description,
            private=self.options.private,
            password_hash=self.options.password_hash,
        )
        drop.delete_token = token
        if not drop.custom_slug:
            drop.slug = self.service.new_slug(drop)
        self.service.hook("teledrop_commit_drop", drop=drop, blob=self.writer.blob,
                          content=BlobContent(self.service.storage, drop.blob_id))
        self.service.notify("teledrop_drop_created", drop=drop)
        return drop

    def close(self) -> None:
        """End the inspection and release the staged blob; unless committed, that removes
        it."""
        if self.writer is not None:
            self.writer.digest.close()
            self.writer.blob.close()


def create_drop(service: Teledrop, request: UploadRequest,
                receive: Callable[[Upload], None]) -> Drop:
    """Create a drop from one upload. ``receive`` streams the body into the upload.

    Whatever fails, nothing staged outlives the call unless the commit succeeded, and the
    error the client sees is the one that failed the upload, not a storage plugin's
    failing ``close`` after it.
    """
    upload = Upload(service, request)
    try:
        upload.begin()
        receive(upload)
        drop = upload.commit()
    except BaseException:
        try:
            upload.close()
        except Exception:
            log.exception("closing the blob of a failed upload failed")
        raise
    upload.close()
    return drop


def clean_filename(name: str | None) -> str:
    """The filename to record and show. It never names a path: storage uses generated
    blob ids, so this only guards what downloads put into ``Content-Disposition``."""
    if name is None or not name.strip():
        return DEFAULT_FILENAME
    name = unicodedata.normalize("NFC", name.strip())
    if unsafe_in_name(name):
        raise InvalidFilename("the filename contains control or invisible formatting "
                              "characters (bidirectional controls, zero-width spaces)")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise InvalidFilename("the filename must be a plain name, not a path")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_FILENAME_BYTES:
        raise InvalidFilename(f"the filename is longer than {MAX_FILENAME_BYTES} bytes")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidFilename("the filename is not valid UTF-8") from None
    return name


def pick_content_type(declared: str | None, filename: str) -> str:
    """The client's media type when it is a plain, specific one; else a guess from the
    filename. Parameters are dropped: downloads set their own headers."""
    media = (declared or "").split(";", 1)[0].strip().lower()
    if _MEDIA_TYPE.fullmatch(media) and media != "application/octet-stream":
        return media
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"
