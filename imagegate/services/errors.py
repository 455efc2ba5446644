"""Domain errors of the admin and policy services.

::

    ServiceError            a request cannot be carried out; ``message`` says why
    ├── NotFound            a user, organization, team or override does not exist
    ├── AlreadyExists       the name is taken
    └── InvalidInput        a value breaks a rule (bad name, last owner, empty password)

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
