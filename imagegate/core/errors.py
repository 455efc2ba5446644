"""Registry errors: the one vocabulary every layer raises and the HTTP edge renders.

Each error carries the registry code (OCI distribution spec), the HTTP status and a
message a person can act on. ``http.errors`` turns them into the JSON envelope
``{"errors": [{"code", "message", "detail"}]}``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class RegistryError(Exception):
    """Base of every error a registry client may see."""

    code: ClassVar[str] = "UNKNOWN"
    status: ClassVar[int] = 500

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class BlobUnknown(RegistryError):
    code = "BLOB_UNKNOWN"
    status = 404


class BlobUploadInvalid(RegistryError):
    code = "BLOB_UPLOAD_INVALID"
    status = 400


class BlobUploadUnknown(RegistryError):
    code = "BLOB_UPLOAD_UNKNOWN"
    status = 404


class DigestInvalid(RegistryError):
    code = "DIGEST_INVALID"
    status = 400


class ManifestBlobUnknown(RegistryError):
    code = "MANIFEST_BLOB_UNKNOWN"
    status = 400


class ManifestInvalid(RegistryError):
    code = "MANIFEST_INVALID"
    status = 400


class ManifestUnknown(RegistryError):
    code = "MANIFEST_UNKNOWN"
    status = 404


class NameInvalid(RegistryError):
    code = "NAME_INVALID"
    status = 400


class NameUnknown(RegistryError):
    code = "NAME_UNKNOWN"
    status = 404


class SizeInvalid(RegistryError):
    code = "SIZE_INVALID"
    status = 400


class Unauthorized(RegistryError):
    """Authentication is required or failed; the edge adds the Bearer challenge."""

    code = "UNAUTHORIZED"
    status = 401

    def __init__(
        self,
        message: str,
        detail: Any = None,
        *,
        scope: str | None = None,
        insufficient_scope: bool = False,
    ) -> None:
        super().__init__(message, detail)
        self.scope = scope
        self.insufficient_scope = insufficient_scope


class Denied(RegistryError):
    """The caller is known and may not do this (for example, image access policy)."""

    code = "DENIED"
    status = 403


class Unsupported(RegistryError):
    code = "UNSUPPORTED"
    status = 405


class TooManyRequests(RegistryError):
    code = "TOOMANYREQUESTS"
    status = 429


class RangeInvalid(RegistryError):
    """An unsatisfiable Range; distribution's code, with RFC 9110's status."""

    code = "RANGE_INVALID"
    status = 416


class Unavailable(RegistryError):
    """The upstream cannot be reached and nothing usable is cached."""

    code = "UNAVAILABLE"
    status = 503


class UpstreamError(Unavailable):
    """The upstream answered with something we cannot pass on."""

    status = 502
