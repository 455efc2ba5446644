"""Registry errors particular to hosted repositories (the vocabulary is ``core.errors``)."""

from __future__ import annotations

from imagegate.core.errors import SizeInvalid


class ManifestTooLarge(SizeInvalid):
    """A manifest over ``MAX_MANIFEST_BYTES``: SIZE_INVALID with 413, as the spec advises
    (core's SizeInvalid is 400, for a length that disagrees with the content)."""

    status = 413
