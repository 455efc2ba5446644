"""Image categories as Docker Hub's Image Access Management defines them."""

from __future__ import annotations

import enum


class PublisherStatus(enum.StrEnum):
    """What Docker Hub (or an admin override) says of a namespace's publisher."""

    VERIFIED_PUBLISHER = "verified_publisher"
    SPONSORED_OSS = "sponsored_oss"
    COMMUNITY = "community"


class Category(enum.StrEnum):
    """The category of an image *for one organization's policy*."""

    ORGANIZATION = "organization"
    OFFICIAL = "official"
    VERIFIED_PUBLISHER = "verified_publisher"
    SPONSORED_OSS = "sponsored_oss"
    COMMUNITY = "community"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Category.ORGANIZATION: "organization images",
    Category.OFFICIAL: "Docker Official Images",
    Category.VERIFIED_PUBLISHER: "Verified Publisher images",
    Category.SPONSORED_OSS: "Sponsored OSS images",
    Category.COMMUNITY: "community images",
}
