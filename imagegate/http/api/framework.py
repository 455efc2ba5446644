"""The API's small machinery: declared endpoints, strict JSON bodies, errors, pages.

Every endpoint is an ``Endpoint``: method, path, handler, who may call it (a ``Need``,
checked before the handler by ``access.EndpointAccess``), and the JSON schemas of its
request and responses. The router serves each path with and without a
trailing slash (never a redirect: a 301 on POST loses the body), the request body is
checked against the declared schema before the handler runs (unknown fields, wrong
types and over-long strings are a 400 with a message), and ``openapi`` renders the same
table, so the document cannot drift from what the server does.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from imagegate.core.authorization import Caller, Need
from imagegate.core.inputs import (
    JsonInvalid,
    first_text_problem,
    load_json,
    text_problem,
    whole_number,
)
from imagegate.services.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    ServiceError,
    TooManyAttempts,
)
from imagegate.services.orgs import MemberDetail

Json = dict[str, Any]
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100


class ApiError(Exception):
    """A refusal with its HTTP status; ``message`` is for the person who asked."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.retry_after = retry_after  # seconds, sent as Retry-After (a 429)


def error_body(status: int, message: str, field: str | None = None) -> Json:
    """Hub's error families in one body: ``error`` (errinfo, detail, message) and ``Error``
    (detail, message); a 400 on a field adds ``ValueError``'s ``fields`` and ``text``.

    ``errinfo`` is null (hub-tool decodes the body as a map of strings), and every 404
    says "not found" (the Terraform provider looks for those words).
    """
    if status == 404 and "not found" not in message.lower():
        message = f"{message} (not found)"
    body: Json = {"errinfo": None, "detail": message, "message": message}
    if field is not None:
        body["fields"] = {field: [message]}
        body["text"] = message
    return body


def error_response(error: ApiError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(
        error_body(error.status, error.message, error.field), error.status, headers=headers
    )


def service_error(exc: ServiceError) -> ApiError:
    if isinstance(exc, NotFound):
        return ApiError(404, exc.message)
    if isinstance(exc, AlreadyExists):
        return ApiError(409, exc.message)
    if isinstance(exc, TooManyAttempts):
        return ApiError(429, exc.message, retry_after=exc.retry_after)
    assert isinstance(exc, InvalidInput | ServiceError)
    return ApiError(400, exc.message)


# --- dates -----------------------------------------------------------------------------


def _utc_text(value: dt.datetime, fractions: bool) -> str:
    # The year by hand: strftime's %Y drops leading zeros on glibc (year 92, not 0092).
    value = value.astimezone(dt.UTC)
    text = f"{value.year:04d}-{value:%m-%dT%H:%M:%S}"
    return f"{text}.{value.microsecond:06d}Z" if fractions else f"{text}Z"


def rfc3339(value: dt.datetime | None) -> str | None:
    """``2021-07-20T12:00:00.000000Z`` (Hub's form), or ``None``."""
    return None if value is None else _utc_text(value, fractions=True)


def rfc3339_short(value: dt.datetime | None) -> str | None:
    """Seconds-only when there are no fractions, so an ``expires_at`` echoes as sent."""
    return None if value is None else _utc_text(value, fractions=bool(value.microsecond))


_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


def parse_date_time(value: str, name: str) -> dt.datetime:
    if _DATE_TIME.fullmatch(value) is None:
        raise ApiError(400, f"{name}: {value!r} is not a date-time such as 2029-12-31T23:59:59Z")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        parsed.astimezone(dt.UTC)  # 9999-12-31T23:59:59-01:00 is past year 9999 in UTC
    except (ValueError, OverflowError):
        raise ApiError(400, f"{name}: {value!r} is not a valid date-time", field=name) from None
    return parsed


# --- request bodies ----------------------------------------------------------------------


def _check(value: Any, schema: Mapping[str, Any], where: str) -> None:
    """Validate ``value`` against the subset of JSON Schema the endpoints declare."""
    kind = schema.get("type")
    if schema.get("nullable") and value is None:
        return
    if kind == "object":
        if not isinstance(value, dict):
            raise ApiError(400, f"{where or 'the body'} must be a JSON object", field=where or None)
        properties: Mapping[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                path = f"{where}.{name}" if where else name
                raise ApiError(400, f"{path} is required", field=path)
        for name, item in value.items():
            path = f"{where}.{name}" if where else name
            if name not in properties:
                raise ApiError(400, f"unknown field {path!r}", field=path)
            _check(item, properties[name], path)
    elif kind == "string":
        if not isinstance(value, str):
            raise ApiError(400, f"{where} must be a string", field=where)
        problem = text_problem(value)
        if problem is not None:
            raise ApiError(400, f"{where} is not valid text: {problem}", field=where)
        if len(value) > schema.get("maxLength", 10_000):
            raise ApiError(
                400, f"{where} is longer than {schema['maxLength']} characters", field=where
            )
        if len(value) < schema.get("minLength", 0):
            raise ApiError(400, f"{where} must not be empty", field=where)
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(schema["enum"])
            raise ApiError(400, f"{where}: {value!r} is not one of {allowed}", field=where)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise ApiError(400, f"{where} must be true or false", field=where)
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ApiError(400, f"{where} must be an integer", field=where)
    elif kind == "array":
        if not isinstance(value, list):
            raise ApiError(400, f"{where} must be an array", field=where)
        if len(value) > schema.get("maxItems", 100):
            raise ApiError(400, f"{where} has too many items", field=where)
        for index, item in enumerate(value):
            _check(item, schema["items"], f"{where}[{index}]")


async def read_body(request: Request, schema: Mapping[str, Any]) -> Json:
    raw = bytearray()
    async for chunk in request.stream():  # at most 64 KiB: http.limits.BodyLimit
        raw += chunk
    try:
        body = load_json(bytes(raw)) if raw.strip() else None
    except JsonInvalid as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if body is None:
        raise ApiError(400, "a JSON object body is required")
    _check(body, schema, "")
    assert isinstance(body, dict)
    return body


# --- query parameters and pages -------------------------------------------------------------


def check_text(request: Request) -> None:
    """Every path and query value is text a database can hold (a NUL character is not)."""
    found = first_text_problem([*request.path_params.items(), *request.query_params.multi_items()])
    if found is not None:
        name, problem = found
        raise ApiError(400, f"{name} is not valid text: {problem}", field=name)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    value = whole_number(raw, 9)
    if value is None or not low <= value <= high:
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}")
    return value


def query_text(request: Request, name: str, max_length: int = 100) -> str:
    value = request.query_params.get(name, "")
    if len(value) > max_length:
        raise ApiError(400, f"{name} is longer than {max_length} characters")
    return value


@dataclass(frozen=True)
class PageRequest:
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @classmethod
    def of(cls, request: Request, default_size: int = DEFAULT_PAGE_SIZE) -> PageRequest:
        page = query_int(request, "page", 1, 1, 1_000_000)
        size = query_int(request, "page_size", default_size, 1, MAX_PAGE_SIZE)
        return cls(page, size)


def paginated(
    request: Request, public_url: str, page: PageRequest, count: int, results: Sequence[Json]
) -> Json:
    """DRF's envelope; ``next``/``previous`` are absolute URLs (Terraform needs that)."""

    def link(number: int) -> str:
        base = public_url.rstrip("/") or f"{request.url.scheme}://{request.url.netloc}"
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
        params.append(("page", str(number)))
        return f"{base}{request.url.path}?{urlencode(params)}"

    has_next = page.offset + len(results) < count and len(results) > 0
    return {
        "count": count,
        "next": link(page.page + 1) if has_next else None,
        "previous": link(page.page - 1) if page.page > 1 else None,
        "results": list(results),
    }


# The query parameters ``PageRequest.of`` reads, as an endpoint declares them.
PAGE_QUERY: Mapping[str, Json] = {
    "page": {"type": "integer", "minimum": 1},
    "page_size": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
}


def page_schema(item: Json, **extra: Json) -> Json:
    return {
        "type": "object",
        "required": ["count", "next", "previous", "results"],
        "properties": {
            "count": {"type": "integer"},
            "next": {"type": "string", "nullable": True},
            "previous": {"type": "string", "nullable": True},
            **extra,
            "results": {"type": "array", "items": item},
        },
    }


# --- the endpoint table -------------------------------------------------------------------

Handler = Callable[["Call"], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # without a trailing slash; both forms are served
    handler: Handler
    summary: str
    need: Need  # who may call it, and whether it writes; no default, so none is forgotten
    org: str = "org"  # the path parameter naming the organization of a member/owner need
    body: Json | None = None  # the request's JSON schema
    responses: Mapping[int, Json | None] = field(default_factory=dict)  # status -> schema
    query: Mapping[str, Json] = field(default_factory=dict)  # name -> schema
    tag: str = ""


@dataclass
class Call:
    """One request as a handler sees it, admitted: who asks, their membership of the
    path's organization (member and owner endpoints), the path values and the body."""

    request: Request
    caller: Caller | None
    membership: MemberDetail | None
    params: Mapping[str, str]
    body: Json

    @property
    def user(self) -> Caller:
        assert self.caller is not None, "the endpoint was declared for anyone"
        return self.caller

    @property
    def member(self) -> MemberDetail:
        assert self.membership is not None, "the endpoint was not declared member or owner"
        return self.membership


def json_response(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status)


def no_content() -> Response:
    return Response(status_code=204)
