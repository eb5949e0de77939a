"""Every hook teledrop calls. Implement them with ``from teledrop import hookimpl``.

Arguments are passed by name: an implementation takes only the ones it needs, and must not
give them defaults (pluggy never passes those).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from teledrop import hookspec

if TYPE_CHECKING:
    from teledrop.core.config import Config
    from teledrop.core.content import BlobContent
    from teledrop.core.drop import Drop
    from teledrop.core.inspection import Inspector
    from teledrop.core.interfaces import BlobWriter, Metadata, Storage
    from teledrop.core.upload import UploadRequest


@hookspec
def teledrop_config_schema() -> dict[str, type]:
    """Declare the settings of ``[plugins.<name>]`` tables.

    Called once at start-up, before any backend is built.

    :returns: ``{plugin_name: dataclass}``; the table is validated against the dataclass's
        typed fields (unknown keys and wrong types stop start-up) and an instance is passed
        to backend factories as ``settings``.

    All results are merged; a name declared twice stops start-up.
    """


@hookspec
def teledrop_storage_backends() -> dict[str, Callable[..., Storage]]:
    """Offer storage backends by name.

    Called once at start-up. The backend named by ``[storage] plugin`` is built by calling
    its factory with ``settings`` (that plugin's settings instance, or ``None``) and
    ``config`` (the whole :class:`~teledrop.core.config.Config`), as keywords.

    :returns: ``{name: factory}``.

    All results are merged; a name offered twice stops start-up.
    """


@hookspec
def teledrop_metadata_backends() -> dict[str, Callable[..., Metadata]]:
    """Offer metadata backends by name; the same contract as
    :func:`teledrop_storage_backends`, for ``[metadata] plugin``.

    :returns: ``{name: factory}``.

    All results are merged; a name offered twice stops start-up.
    """


@hookspec(firstresult=True)
def teledrop_hasher(config: Config, settings: Mapping[str, Any]) -> Any:
    """A new hasher for one upload.

    Called once per upload before its first byte is written.

    :param config: the effective configuration.
    :param settings: every plugin's validated settings, ``{name: instance}`` as declared by
        :func:`teledrop_config_schema` (how a plugin reads its own table).

    :returns: an object with ``name``, ``update(bytes)`` and ``hexdigest()`` (hashlib's
        interface). The drop's ``hash`` is ``"<name>:<hexdigest>"``. The default (blake3)
        is ``trylast``.

    Stops at first non-None result.
    """


@hookspec
def teledrop_authorize_upload(request: UploadRequest, config: Config,
                              settings: Mapping[str, Any]) -> None:
    """Decide whether an upload may proceed.

    Called for each upload before its body is read.

    :param request: the upload's headers, query, method and remote address.
    :param config: the effective configuration.
    :param settings: every plugin's validated settings, ``{name: instance}`` as declared by
        :func:`teledrop_config_schema` (how a plugin reads its own table).

    Raise a :class:`~teledrop.core.errors.TeledropError` (such as ``Unauthorized``) to
    refuse. All implementations are called; any one can refuse.
    """


@hookspec(firstresult=True)
def teledrop_generate_slug(drop: Drop, config: Config, settings: Mapping[str, Any]) -> str | None:
    """A fresh slug for a drop that did not ask for one.

    Called after the upload's bytes are staged, before the commit; again if the slug is
    refused by :func:`teledrop_check_slug` or found taken.

    :param drop: the drop being created (``slug`` is still empty).
    :param config: the effective configuration.
    :param settings: every plugin's validated settings, ``{name: instance}`` as declared by
        :func:`teledrop_config_schema` (how a plugin reads its own table).
    :returns: the slug. The default (9 URL-safe characters, about 54 random bits) is ``trylast``.

    Stops at first non-None result.
    """


@hookspec
def teledrop_check_slug(slug: str, custom: bool, config: Config,
                        settings: Mapping[str, Any]) -> None:
    """Vet a slug before it is used.

    Called for a custom slug as soon as it is known (before the body when it comes in the
    query) and for each generated slug.

    :param slug: the slug.
    :param custom: ``True`` when the client chose it.
    :param config: the effective configuration.
    :param settings: every plugin's validated settings, ``{name: instance}`` as declared by
        :func:`teledrop_config_schema` (how a plugin reads its own table).

    Raise :class:`~teledrop.core.errors.InvalidSlug` to refuse. All implementations are
    called.
    """


@hookspec
def teledrop_inspect_upload(request: UploadRequest, filename: str, content_type: str,
                            config: Config, settings: Mapping[str, Any]) -> Inspector | None:
    """An inspector of one upload's bytes (a virus scanner, a type sniffer, a quota).

    Called once per upload when its file opens, before its first byte is read: for a
    multipart ``POST`` when the file part begins, for a ``PUT`` before its body, for a
    resumable upload when its first byte arrives, and again at its completion when the
    inspectors of that first request did not see every byte in one process (then they
    are fed the staged bytes, read once, before the commit); for a direct upload at its
    completion, fed the object as it is read once to be hashed.

    :param request: the upload's request facts, as :func:`teledrop_authorize_upload` got
        them (``owner`` set); for a resumable upload, those recorded with it (``owner``,
        ``declared_size`` the upload's length, ``filename``), not any one request's headers.
    :param filename: the file's name, as the drop records it.
    :param content_type: the file's media type, as the drop records it: the client's
        declared one when it is specific, else a guess from the filename.
    :param config: the effective configuration.
    :param settings: every plugin's validated settings, ``{name: instance}`` as declared by
        :func:`teledrop_config_schema` (how a plugin reads its own table).
    :returns: ``None`` to let the upload pass uninspected, or an object with
        ``update(chunk)``, called with every byte of the file in order as it is hashed and
        written (a ``memoryview`` valid only during the call, never empty: a zero-length
        chunk means the end of a stream to protocols such as clamd's), and ``finish()``,
        called once after the last byte and before the commit. Either may raise a
        :class:`~teledrop.core.errors.TeledropError` to refuse the upload: the client gets
        its status and message, the body is not read further and nothing is kept (a
        resumable upload is removed). Optional: ``close()``, called once when the
        inspection ends however it ends; ``resumable = True``, when the object can go on
        with the next request of a resumable upload in this process (without it, an
        upload sent in several requests is inspected again at its completion).

    All results are used: every implementation's inspector sees every byte, and any one
    can refuse.
    """


@hookspec
def teledrop_commit_drop(drop: Drop, blob: BlobWriter, content: BlobContent, config: Config,
                         settings: Mapping[str, Any]) -> list[Drop]:
    """Commit a drop: the compensation chain.

    Called once per upload after its bytes are staged and hashed. teledrop's own
    ``commit_chain`` plugin holds both ends: its outermost wrapper publishes the blob and
    discards it if anything inside fails; its innermost implementation inserts the record.

    A plugin with side effects wraps this hook (``wrapper=True``), does its work, and
    undoes it in ``except BaseException: ...; raise`` when the inner call fails. Undo code
    must never raise: an error raised while undoing replaces the original one.

    :param drop: the drop, with its slug, hash and size final.
    :param blob: the staged (then published) blob writer.
    :param content: the published file, readable from inside the chain whatever the
        storage (:class:`~teledrop.core.content.BlobContent`: ``open()``, ``chunks()``).
    :param config: the effective configuration.
    :param settings: every plugin's validated settings, ``{name: instance}`` as declared by
        :func:`teledrop_config_schema` (how a plugin reads its own table).
    :returns: the results of the non-wrapper implementations (``[drop]`` from the core's
        insert): what a wrapper's ``yield`` gives back and must return.

    All implementations form one chain: wrappers around the core's insert.
    """


@hookspec
def teledrop_drop_created(drop: Drop, config: Config, settings: Mapping[str, Any]) -> None:
    """An event: a drop was committed.

    Each implementation is called on its own after the commit; a failure is logged and
    never undoes the drop.

    :param drop: the new drop (its ``delete_token`` is set: never send or log it).
    :param config: the effective configuration.
    :param settings: every plugin's validated settings, ``{name: instance}`` as declared by
        :func:`teledrop_config_schema` (how a plugin reads its own table).
    """


@hookspec
def teledrop_drop_deleted(drop: Drop, reason: str, config: Config,
                          settings: Mapping[str, Any]) -> None:
    """An event: a drop's record and file were removed.

    Each implementation is called on its own; a failure is logged.

    :param drop: the drop as it was.
    :param reason: ``"deleted"`` (by its delete token), ``"expired"`` or ``"exhausted"``
        (by gc).
    :param config: the effective configuration.
    :param settings: every plugin's validated settings, ``{name: instance}`` as declared by
        :func:`teledrop_config_schema` (how a plugin reads its own table).
    """
