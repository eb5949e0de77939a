"""Contract test suites for storage and metadata backends.

Every backend, teledrop's own and third-party ones alike, proves it honours the protocols
of :mod:`teledrop.core.interfaces` by running the same suites. They are pytest classes
(in the spirit of devpi's reusable fixtures): subclass one in your backend's test module,
name the subclass ``Test...`` so pytest collects it, and provide the fixture it needs::

    # tests/test_my_storage.py
    import pytest
    from teledrop.testing import StorageContract
    from my_plugin import MyStorage

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            store = MyStorage(bucket=..., prefix=str(tmp_path))  # an empty store
            yield store
            store.close()

    # tests/test_my_metadata.py
    from teledrop.testing import MetadataContract

    class TestMyMetadata(MetadataContract):
        @pytest.fixture
        def metadata(self, tmp_path):
            store = MyMetadata(dsn=...)  # an empty store
            yield store
            store.close()

Each test gets a fresh fixture; the suites tolerate leftovers from elsewhere but assume
nothing else writes to the store while they run. Add your backend's own tests (layout,
error mapping, migrations) next to the inherited ones in the same class or module. The
suites need ``pytest`` (teledrop's ``test`` extra); importing this package without it fails.

What the suites check:

- :class:`StorageContract`: stage → write (bytes and memoryview) → publish → open returns
  the bytes; unpublished blobs are invisible to ``open`` and listed by ``list_staging``;
  ``close()`` without ``publish()`` discards; ``discard`` after publish removes the blob;
  ``discard``, ``delete`` and ``remove_staging`` are idempotent; ``list_blobs`` lists
  published blobs with their ages; blob ids are distinct and independent of the content;
  concurrent writers do not mix; ``check()`` passes on a healthy store.
- :class:`ResumableStagingContract`, for a storage with resumable staging: staged bytes
  outlive their writer and are appended to at the recorded offset (anything past it is
  dropped, a resume from an older record ignores what followed it), cut anywhere (around
  5 MiB multiples too) they round-trip, ``read_staged`` gives them back (or ``None``
  where they cannot be read before publishing), a final sync can be resumed and
  published, publishing twice changes nothing, they are neither readable blobs nor
  staging debris, and ``remove_resumable`` and ``discard`` remove them.
- :class:`MetadataContract`: every :class:`~teledrop.core.drop.Drop` field round-trips;
  the delete token itself is never stored; a duplicate slug raises ``SlugTaken`` and leaves
  the first record untouched; ``claim_download`` counts atomically and refuses past
  ``max_downloads`` or after expiry; under concurrency exactly ``max_downloads`` claims and
  exactly one insert of a contested slug succeed, every claim of an unlimited drop and
  every wrong password is counted, and a drop deleted by many at once (or by two gc runs)
  is returned to one of them; ``delete`` and ``update`` given the blob id the caller read
  leave alone a drop that took the slug since; the owner search folds case for all of
  Unicode and takes ``%`` and ``_`` literally; ``delete_if_gone``, ``list_gone``,
  ``iter_drops``, ``blob_ids``, ``count``, ``total_size`` and ``check()`` do what the
  protocol says; resumable uploads round-trip, exactly one of many racing requests takes
  an upload's lease, none takes an expired, complete or leased one, and only the holder
  records progress.
"""

from __future__ import annotations

from .metadata import MetadataContract, sample_drop
from .storage import ResumableStagingContract, StorageContract

__all__ = ["MetadataContract", "ResumableStagingContract", "StorageContract", "sample_drop"]
