"""Typed errors of the two services and of the pipeline.

Every error carries the service's own code and message so a parked event tells a person what the
target system said, not what our code guessed.
"""

from __future__ import annotations


class ProjopsError(Exception):
    """Base of every error projops-sync raises on purpose."""


class ServiceError(ProjopsError):
    """A non-success answer from Dataverse or Finance."""

    def __init__(
        self,
        system: str,
        status: int,
        message: str,
        *,
        code: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.system = system
        self.status = status
        self.code = code or None
        self.service_message = message
        self.method = method
        self.url = url
        # Set by the request engine: an earlier attempt of the same call got no answer (a timeout, a
        # dropped connection), so what it asked for may have been applied before this answer came.
        self.after_lost_attempt = False
        where = f" ({method} {url})" if method and url else ""
        code_text = f" [{self.code}]" if self.code else ""
        super().__init__(f"{system} {status}{code_text}: {message}{where}")


class TransientServiceError(ServiceError):
    """429, 5xx, timeouts and dropped connections: worth trying again later."""

    def __init__(
        self,
        system: str,
        status: int,
        message: str,
        *,
        code: str | None = None,
        method: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(system, status, message, code=code, method=method, url=url)
        self.retry_after = retry_after


class NotFoundError(ServiceError):
    """404: the addressed record does not exist."""


class PreconditionFailedError(ServiceError):
    """412: If-Match / If-None-Match failed, or a duplicate key."""


class RecordNotFoundByKeyError(ServiceError):
    """Dataverse 0x80060891: a record named by an alternate key (often an @odata.bind) does not exist."""


class RecordExistsError(ServiceError):
    """Finance refused a POST because a record with the same key already exists."""


class PermanentServiceError(ServiceError):
    """Validation and other 4xx answers that retrying will not change."""


class AuthError(ProjopsError):
    """A token could not be acquired; the message carries Entra's error description."""


class DecodeError(ProjopsError):
    """A message that cannot be turned into ChangeEvents; the message says why and what to do."""


class MissingDependencyError(ProjopsError):
    """A referenced record is not (yet) on the other side. Retried later, then parked naming it."""

    def __init__(self, reference: str) -> None:
        self.reference = reference
        super().__init__(f"missing dependency: {reference}")


class MappingError(ProjopsError):
    """The record cannot be mapped: an unmapped option value, a filter that cannot be evaluated ..."""


class OutOfScopeError(MappingError):
    """The record belongs to a legal entity outside PROJOPS_COMPANIES: not this deployment's to sync."""


class OperatorError(ProjopsError):
    """An expected failure of an operation (unknown flow, bad date, no such parked event, a missing
    setting, a host that does not answer): one line that says what to do, never a traceback."""
