"""The Image Access page (Docker Hub's "Org Permissions"), its allowlist, the upstream
namespace mirrored into the organization's, and "try a pull".

Owners change the settings; members see the same page with every control disabled. The
"try a pull" box asks ``AccessService.decide_pull``, the function the registry asks, for
this organization's own rules only (``only_org``): the page never tells one
organization about a member's other organizations, their settings or their namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.core.authorization import Who, reads, writes
from imagegate.core.categories import Category
from imagegate.core.digests import is_digest
from imagegate.core.errors import NameInvalid
from imagegate.core.names import RepositoryName, is_tag, parse_repository
from imagegate.core.policy import Decision, ImageAccessSettings, base_category
from imagegate.http.console.pages import Console, Visit
from imagegate.services import InvalidInput, NotFound, Services

MAX_REFERENCE_LENGTH = 512
ALLOWED, RESTRICTED = "allowed", "restricted"


class Allowlist(Protocol):
    """``services.allowlist``: an organization's repository allowlist."""

    async def list(self, org: str) -> list[str]:
        """The allowlisted repositories, sorted."""

    async def add(self, org: str, repository: str) -> bool:
        """Allowlist a repository; False if it already was."""

    async def remove(self, org: str, repository: str) -> bool:
        """Take a repository off; False if it was not on the list."""


def allowlist_of(services: Services) -> Allowlist | None:
    """The allowlist service, on builds that have it."""
    found: Allowlist | None = getattr(services, "allowlist", None)
    return found


def parse_image_reference(text: str) -> RepositoryName:
    """The repository of an image reference as a person types it for ``docker pull``.

    Accepts ``nginx``, ``acme/app:1.2``, ``org/app@sha256:...`` and a registry host in
    front (``gateway.example:5000/acme/app``), which is dropped: the policy is about the
    repository. Raises ``ValueError`` with a message a person can act on.
    """
    text = text.strip()
    if not text:
        raise ValueError("Enter an image, such as nginx or acme/app:1.0.")
    if len(text) > MAX_REFERENCE_LENGTH:
        raise ValueError(f"That image reference is longer than {MAX_REFERENCE_LENGTH} characters.")
    name, at, digest = text.partition("@")
    if at and not is_digest(digest):
        raise ValueError(f"{digest!r} is not a digest (sha256:<64 hex digits>).")
    head, slash, last = name.rpartition("/")
    base, colon, tag = last.partition(":")
    if colon:
        if not is_tag(tag):
            raise ValueError(f"{tag!r} is not a valid tag.")
        name = f"{head}{slash}{base}"
    first, rest = name.split("/", 1) if "/" in name else (name, "")
    if rest and ("." in first or ":" in first or first == "localhost"):
        name = rest  # a registry host: gateway.example/acme/app
    try:
        return parse_repository(name)
    except NameInvalid as exc:
        raise ValueError(f"{exc.message[:1].upper()}{exc.message[1:]}.") from None


def effect_sentence(settings: ImageAccessSettings, org: str, allowlisted: int) -> str:
    """What the settings mean for members, in one sentence."""
    if not settings.enabled:
        return (
            "Image access is disabled: members can pull any image; "
            "owners can always pull everything."
        )
    allowed = [f"{org}'s own images"]
    restricted: list[str] = []
    for flag, label in (
        (settings.allow_official, "Docker Official Images"),
        (settings.allow_verified_publishers, "Verified Publisher images"),
        (settings.allow_community, "community images (including Sponsored OSS)"),
    ):
        (allowed if flag else restricted).append(label)
    if allowlisted:
        s = "y" if allowlisted == 1 else "ies"
        allowed.append(f"the {allowlisted} allowlisted repositor{s}")
    sentence = f"Members can pull {_join(allowed)}"
    if restricted:
        sentence += f", but not {_join(restricted, 'or')}"
    return sentence + "; owners can always pull everything."


def _join(items: list[str], last: str = "and") -> str:
    if len(items) <= 2:
        return f" {last} ".join(items)
    return ", ".join(items[:-1]) + f", {last} " + items[-1]


@dataclass(frozen=True)
class TryResult:
    member: str
    image: str
    decision: Decision
    shown_category: Category  # the decision's, or looked up when the decision needed none

    @property
    def category(self) -> str:
        label = self.shown_category.label
        return label[:1].upper() + label[1:]

    @property
    def explanation(self) -> str:
        if self.decision.allowed:
            return self.decision.reason[:1].upper() + self.decision.reason[1:] + "."
        return self.decision.message


class ImageAccess:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.services = console.services

    def _url(self, visit: Visit) -> str:
        return f"/console/orgs/{visit.org.name}/image-access"

    async def show(self, visit: Visit, *, status: int = 200, **context: Any) -> Response:
        org = visit.org
        settings = await self.services.access.get_settings(org.name)
        context.setdefault("mirror", await self.services.access.upstream_namespace(org.name))
        context.setdefault("mirror_input", None)
        allowlist = allowlist_of(self.services)
        entries = await allowlist.list(org.name) if allowlist is not None else None
        context.setdefault("notice", _NOTICES.get(visit.query("done")))
        context.setdefault("allowlist_input", "")
        if "try_result" not in context:
            context.update(await self._try(visit))
        return self.console.render(
            visit,
            "image_access.html",
            status=status,
            tab="image-access",
            settings=settings,
            allowlist=entries,
            effect=effect_sentence(settings, org.name, len(entries or [])),
            categories=_categories(settings),
            **context,
        )

    async def _try(self, visit: Visit) -> dict[str, Any]:
        """The "try a pull" answer for the query's image and member, if asked."""
        org = visit.org
        image = visit.query("image")
        member = visit.query("member") if org.is_owner else visit.username
        asked = "image" in visit.request.query_params
        context: dict[str, Any] = {
            "try_image": image[:MAX_REFERENCE_LENGTH],
            "try_member": member or visit.username,
            "try_result": None,
            "try_error": None,
        }
        if not asked:
            return context
        members = {m.username for m in org.members}
        if not member:
            context["try_error"] = "Choose the member who would pull."
        elif member not in members:
            context["try_error"] = f"{member[:64]!r} is not a member of {org.name}."
        else:
            try:
                repository = parse_image_reference(image)
            except ValueError as exc:
                context["try_error"] = f"Bad image name: {exc}"
            else:
                decision = await self.services.access.decide_pull(
                    member, repository, only_org=org.name
                )
                category = await self._category(decision)
                context["try_result"] = TryResult(member, image, decision, category)
        return context

    async def _category(self, decision: Decision) -> Category:
        """The image's category to show. A decision no policy bound never looked up the
        publisher (its category is community by default), so look it up for the page."""
        if decision.category is not Category.COMMUNITY or not decision.allowed:
            return decision.category
        status = await self.services.publishers.status(decision.repository.namespace)
        return base_category(decision.repository, status)

    async def page(self, visit: Visit) -> Response:
        return await self.show(visit)

    async def save(self, visit: Visit) -> Response:
        values: dict[str, bool] = {}
        for field in ("official", "verified", "community"):
            value = visit.field(field)
            if value not in (ALLOWED, RESTRICTED):
                return await self.show(
                    visit, status=400, error="Choose Allowed or Restricted for every category."
                )
            values[field] = value == ALLOWED
        enabled = visit.field("enabled")
        if enabled not in ("on", ""):
            return await self.show(visit, status=400, error="The enable switch is on or off.")
        await self.services.access.set_settings(
            visit.org.name,
            enabled=enabled == "on",
            allow_official=values["official"],
            allow_verified_publishers=values["verified"],
            allow_community=values["community"],
        )
        return self.console.redirect(f"{self._url(visit)}?done=saved")

    async def save_mirror(self, visit: Visit) -> Response:
        namespace = visit.field("upstream_namespace").strip()
        try:
            await self.services.access.set_upstream_namespace(visit.org.name, namespace or None)
        except InvalidInput as exc:
            return await self.show(visit, status=400, error=str(exc), mirror_input=namespace[:100])
        done = "mirrored" if namespace else "unmirrored"
        return self.console.redirect(f"{self._url(visit)}?done={done}")

    async def allowlist_add(self, visit: Visit) -> Response:
        return await self._allowlist_change(visit, add=True)

    async def allowlist_remove(self, visit: Visit) -> Response:
        return await self._allowlist_change(visit, add=False)

    async def _allowlist_change(self, visit: Visit, *, add: bool) -> Response:
        allowlist = allowlist_of(self.services)
        if allowlist is None:
            return self.console.problem(
                visit, 404, "Not available", "This gateway has no repository allowlist yet."
            )
        text = visit.field("repository")
        try:
            repository = parse_image_reference(text).full
        except ValueError as exc:
            return await self.show(
                visit, status=400, error=f"Bad repository name: {exc}", allowlist_input=text[:200]
            )
        try:
            if add:
                changed = await allowlist.add(visit.org.name, repository)
            else:
                changed = await allowlist.remove(visit.org.name, repository)
        except (InvalidInput, NotFound) as exc:
            return await self.show(visit, status=400, error=str(exc), allowlist_input=text[:200])
        done = ("added" if changed else "present") if add else ("removed" if changed else "absent")
        return self.console.redirect(f"{self._url(visit)}?done={done}")

    def routes(self) -> list[BaseRoute]:
        page = self.console.page
        base = "/console/orgs/{org}/image-access"
        return [
            Route(base, page(self.page, reads(Who.MEMBER)), methods=["GET"]),
            Route(base, page(self.save, writes(Who.OWNER)), methods=["POST"]),
            Route(
                f"{base}/upstream-namespace",
                page(self.save_mirror, writes(Who.OWNER)),
                methods=["POST"],
            ),
            Route(
                f"{base}/allowlist/add",
                page(self.allowlist_add, writes(Who.OWNER)),
                methods=["POST"],
            ),
            Route(
                f"{base}/allowlist/remove",
                page(self.allowlist_remove, writes(Who.OWNER)),
                methods=["POST"],
            ),
        ]


_NOTICES = {
    "saved": "Image access settings saved. They apply to the very next pull.",
    "added": "Repository added to the allowlist.",
    "present": "That repository was already on the allowlist.",
    "removed": "Repository removed from the allowlist.",
    "absent": "That repository was not on the allowlist.",
    "mirrored": "Upstream namespace saved. It applies to the very next pull.",
    "unmirrored": "The namespace now serves its hosted repositories only.",
}


@dataclass(frozen=True)
class CategoryRow:
    field: str  # form field; empty: not configurable
    name: str
    description: str
    allowed: bool


def _categories(settings: ImageAccessSettings) -> list[CategoryRow]:
    return [
        CategoryRow(
            "",
            "Organization images",
            "Images in your organization's own namespace, public or private. Always allowed.",
            True,
        ),
        CategoryRow(
            "official",
            Category.OFFICIAL.label,
            "Docker's curated repositories in the library namespace (nginx, alpine, ...).",
            settings.allow_official,
        ),
        CategoryRow(
            "verified",
            "Verified Publisher images",
            "Images from publishers in Docker's Verified Publisher program.",
            settings.allow_verified_publishers,
        ),
        CategoryRow(
            "community",
            "Community images",
            "Everything else, including Docker-Sponsored Open Source images.",
            settings.allow_community,
        ),
    ]
