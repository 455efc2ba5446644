"""Domain errors of the admin and policy services.

::

    ServiceError            a request cannot be carried out; ``message`` says why
    ├── NotFound            a user, organization, team or override does not exist
    ├── AlreadyExists       the name is taken
    ├── InvalidInput        a value breaks a rule (bad name, last owner, empty password)
    └── TooManyAttempts     sign-in attempts are limited for now (HTTP 429, Retry-After)

The CLI prints ``message`` and exits 1; an HTTP API would map these to 404/409/400.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class; ``message`` is written for the person who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    pass


class AlreadyExists(ServiceError):
    pass


class InvalidInput(ServiceError):
    pass


class TooManyAttempts(ServiceError):
    """Too many failed sign-in attempts: the next one is admitted in ``retry_after`` s."""

    def __init__(self, reason: str, retry_after: int) -> None:
        unit = "second" if retry_after == 1 else "seconds"
        super().__init__(f"{reason}; try again in {retry_after} {unit}")
        self.retry_after = retry_after
