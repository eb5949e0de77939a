"""What teledrop's SQL metadata stores (sqlite_meta, postgres_meta) share: the schema and
its version, the statements, row ↔ drop conversion, the owner query, the token store,
error mapping and the migration framework. Each store subclasses :class:`SqlMetadata`
with what its dialect does differently."""

from .schema import SCHEMA_VERSION
from .statements import COLUMNS, COUNT_DOWNLOAD
from .store import SqlMetadata, add_upload_kind, add_uploads_table, operation, transaction

__all__ = ["COLUMNS", "COUNT_DOWNLOAD", "SCHEMA_VERSION", "SqlMetadata", "add_upload_kind",
           "add_uploads_table", "operation", "transaction"]
