"""Exceptions of the consent room; each message says what the operator should do next.

Messages carry paths, ids and counts only: never keys, references, codes or embeddings.
"""

from __future__ import annotations

from foundation.errors import ConsentGateError


class ConsentStoreError(ConsentGateError):
    """Base of every consent-store error."""


# --- key files -------------------------------------------------------------------------------
class KeyFileError(ConsentStoreError):
    """A key or secret file is unusable."""


class KeyFileMissingError(KeyFileError):
    """The key file does not exist."""


class KeyFilePermissionError(KeyFileError):
    """The key file is readable by group or others."""


class KeyFileFormatError(KeyFileError):
    """The key file is not 64 lowercase hex characters."""


class KeyFileExistsError(KeyFileError):
    """Refused to overwrite an existing key file."""


# --- opening the store -----------------------------------------------------------------------
class StoreOpenError(ConsentStoreError):
    """The store could not be opened; the file was left untouched."""


class StoreNotFoundError(StoreOpenError):
    """No store file at the configured path."""


class WrongKeyError(StoreOpenError):
    """The key does not decrypt this store."""


class CorruptStoreError(StoreOpenError):
    """The store is an encrypted store that is damaged."""


class NotAStoreError(StoreOpenError):
    """The file is not an encrypted consentgate store at all."""


class NewerSchemaError(StoreOpenError):
    """The store was written by a newer version of the software."""


class StoreClosedError(ConsentStoreError):
    """The store was used after close()."""


# --- operations ------------------------------------------------------------------------------
class ConsentRequiredError(ConsentStoreError):
    """Enrolment without a live (granted, unexpired, unwithdrawn) consent."""


class InvalidConsentError(ConsentStoreError):
    """Bad arguments to a consent operation (empty reference, expiry in the past, ...)."""


class InvalidEmbeddingError(ConsentStoreError):
    """An embedding has the wrong shape, is not finite, or has zero length."""


class InvalidStaffError(ConsentStoreError):
    """Bad staff account fields."""


class AuditChainError(ConsentStoreError):
    """The hash-chained audit log was edited, reordered or cut."""


class StoreBusyError(StoreOpenError):
    """Another process (the daemon or a provisioning tool) has the store open."""
