"""A blob request's ``Range`` header (RFC 9110, single byte ranges), and the stored
blob it asks for."""

from __future__ import annotations

from functools import partial

from imagegate.core.digests import Digest
from imagegate.core.errors import RangeInvalid
from imagegate.core.inputs import whole_number
from imagegate.proxy.interfaces import BlobStream, ByteRange
from imagegate.storage.interfaces import BlobStore


def _unsatisfiable(header: str, size: int) -> RangeInvalid:
    return RangeInvalid(
        f"range {header!r} cannot be satisfied: the blob is {size} bytes",
        detail={"range": header, "size": size},  # the edge answers Content-Range: bytes */size
    )


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range to serve from a blob of ``size`` bytes, or None to serve it whole.

    ``bytes=a-b`` (the end clamped to the size), ``bytes=a-`` and ``bytes=-n`` are
    honoured; a start at or past the end (any range of an empty blob), a reversed range
    or ``-0`` raise ``RangeInvalid``. Anything else (another unit, several ranges,
    garbage, numbers no blob is that large) is ignored, as RFC 9110 allows.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if unit.strip().lower() != "bytes" or not dash or "," in spec:
        return None
    start, end = whole_number(first), whole_number(last)
    if (first and start is None) or (last and end is None):
        return None  # not digits, or more of them than any blob's size has
    if start is None:  # a suffix: the last ``count`` bytes
        count = end
        if count is None:
            return None
        if count == 0 or size == 0:
            raise _unsatisfiable(header, size)
        return ByteRange(max(size - count, 0), size - 1, size)
    if end is None:
        end = size - 1
    if start >= size or end < start:
        raise _unsatisfiable(header, size)
    return ByteRange(start, min(end, size - 1), size)


def stored_blob(
    blobs: BlobStore, digest: Digest, size: int, range_header: str | None
) -> BlobStream:
    """A blob of ``size`` bytes stored whole in ``blobs``: all of it, or the range asked for.

    Its chunks stream from the store, or the kernel sends its file (``open_file``).
    """
    byte_range = parse_range(range_header, size)
    start, end = (0, None) if byte_range is None else (byte_range.start, byte_range.end)
    chunks = blobs.read(digest, start, end)
    return BlobStream(digest, size, chunks, byte_range, partial(blobs.open_file, digest))
