"""Storage-level errors; the Store turns them into API errors that name the resource, not the key."""

from __future__ import annotations


class StorageError(Exception):
    def __init__(self, key: str = "", message: str = "") -> None:
        super().__init__(message or key)
        self.key = key
        self.message = message


class KeyNotFound(StorageError):
    pass


class KeyExists(StorageError):
    pass


class Conflict(StorageError):
    """A UID or resourceVersion precondition did not hold, or the object changed under a write."""


class Expired(StorageError):
    """A requested revision (list, continue token, watch start) is older than the last compaction."""


class TooLargeResourceVersion(StorageError):
    """A requested revision is newer than the store's current revision (kube's `NewTooLargeResourceVersionError`:
    a 504 Timeout with the cause ResourceVersionTooLarge, after which a client lists again)."""

    def __init__(self, key: str = "", message: str = "", *, requested: int = 0, current: int = 0) -> None:
        super().__init__(key, message or (f"Too large resource version: {requested}, current: {current}"
                                          if requested else "Too large resource version"))
        self.requested = requested
        self.current = current


class RequestTooLarge(StorageError):
    pass


class InvalidContinue(StorageError):
    pass


class Unavailable(StorageError):
    """etcd could not be reached or answered with an unexpected error."""


class Timeout(Unavailable):
    """etcd did not answer within the call's deadline (a stalled or partitioned member): a 504 Timeout."""
