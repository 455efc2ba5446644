"""Users, their passwords and personal access tokens, and signing in with either.

``authenticate`` sits on the hot path: registry clients send Basic credentials to the
token endpoint on every pull. Access tokens are checked with one indexed lookup of their
SHA-256 digest; passwords with argon2 (in a worker thread, so the event loop keeps
serving), after which the success is remembered briefly by a ``CredentialCache``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from imagegate.auth.passwords import (
    PasswordHasher,
    looks_like_access_token,
    new_access_token,
    token_digest,
)
from imagegate.db import Database
from imagegate.db.models import AccessToken, User
from imagegate.services.common import Clock, account_name, claim_account_name, user_id, utcnow
from imagegate.services.credential_cache import CredentialCache
from imagegate.services.errors import AlreadyExists, InvalidInput, NotFound

log = logging.getLogger(__name__)

MAX_TOKEN_LIFETIME_DAYS = 3650
_MAX_PASSWORD_LENGTH = 1024
_MAX_DESCRIPTION_LENGTH = 255
_MAX_EMAIL_LENGTH = 254


@dataclass(frozen=True)
class UserInfo:
    name: str
    email: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a personal access token; never its secret."""

    id: int
    username: str
    description: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    active: bool


def _check_password(password: str) -> str:
    if not password:
        raise InvalidInput("the password must not be empty")
    if len(password) > _MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"the password is longer than {_MAX_PASSWORD_LENGTH} characters")
    return password


def _check_email(email: str | None) -> str | None:
    if email is None or email == "":
        return None
    local, at, domain = email.partition("@")
    if not (local and at and domain) or any(c.isspace() for c in email):
        raise InvalidInput(f"{email!r} is not an email address")
    if len(email) > _MAX_EMAIL_LENGTH:
        raise InvalidInput(f"the email address is longer than {_MAX_EMAIL_LENGTH} characters")
    return email


class AccountService:
    """Creates users and tokens, and decides whether a (username, secret) pair signs in."""

    def __init__(
        self,
        db: Database,
        *,
        hasher: PasswordHasher | None = None,
        cache: CredentialCache | None = None,
        clock: Clock = utcnow,
        touch_interval: dt.timedelta = dt.timedelta(minutes=5),
    ) -> None:
        self._db = db
        self._hasher = hasher or PasswordHasher()
        self._cache = cache or CredentialCache()
        self._clock = clock
        # last_used_at is informational; writing it on every pull would turn each
        # read-only sign-in into a write transaction, so it is refreshed at most this often.
        self._touch_interval = touch_interval

    async def create_user(self, name: str, email: str | None, password: str) -> UserInfo:
        account_name(name, "user name")
        email = _check_email(email)
        password_hash = await asyncio.to_thread(self._hasher.hash, _check_password(password))
        now = self._clock()
        try:
            async with self._db.write() as conn:
                await claim_account_name(conn, name, "user")
                await conn.execute(
                    insert(User).values(
                        name=name, email=email, password_hash=password_hash, created_at=now
                    )
                )
        except IntegrityError:  # lost a race with another command creating the same name
            raise AlreadyExists(f"the name {name!r} is already taken") from None
        return UserInfo(name, email, now)

    async def get_user(self, name: str) -> UserInfo:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(User.name, User.email, User.created_at).where(User.name == name)
                )
            ).first()
        if row is None:
            raise NotFound(f"user {name!r} does not exist")
        return UserInfo(row.name, row.email, row.created_at)

    async def set_password(self, name: str, password: str) -> None:
        """Replace a user's password; cached sign-ins with the old one stop working."""
        password_hash = await asyncio.to_thread(self._hasher.hash, _check_password(password))
        async with self._db.write() as conn:
            result = await conn.execute(
                update(User)
                .where(User.name == name)
                .values(password_hash=password_hash)
                .returning(User.id)
            )
            if result.first() is None:
                raise NotFound(f"user {name!r} does not exist")

    async def create_token(
        self, username: str, description: str = "", expires_in_days: int | None = None
    ) -> tuple[TokenInfo, str]:
        """Mint a personal access token; the secret is returned here and never again."""
        if len(description) > _MAX_DESCRIPTION_LENGTH:
            raise InvalidInput(
                f"the description is longer than {_MAX_DESCRIPTION_LENGTH} characters"
            )
        if expires_in_days is not None and not 0 < expires_in_days <= MAX_TOKEN_LIFETIME_DAYS:
            raise InvalidInput(
                f"a token expires in 1 to {MAX_TOKEN_LIFETIME_DAYS} days, not {expires_in_days}"
            )
        now = self._clock()
        expires_at = now + dt.timedelta(days=expires_in_days) if expires_in_days else None
        token = new_access_token()
        async with self._db.write() as conn:
            owner_id = await user_id(conn, username)
            token_id = await conn.scalar(
                insert(AccessToken)
                .values(
                    user_id=owner_id,
                    uuid=str(uuid.uuid4()),
                    token_hash=token.digest,
                    description=description,
                    created_at=now,
                    expires_at=expires_at,
                )
                .returning(AccessToken.id)
            )
        assert token_id is not None
        info = TokenInfo(token_id, username, description, now, expires_at, None, True)
        return info, token.secret

    async def list_tokens(self, username: str) -> list[TokenInfo]:
        async with self._db.read() as conn:
            owner_id = await user_id(conn, username)
            rows = await conn.execute(
                select(
                    AccessToken.id,
                    AccessToken.description,
                    AccessToken.created_at,
                    AccessToken.expires_at,
                    AccessToken.last_used_at,
                    AccessToken.active,
                )
                .where(AccessToken.user_id == owner_id)
                .order_by(AccessToken.id)
            )
            return [TokenInfo(r.id, username, *r[1:]) for r in rows]

    async def deactivate_token(self, username: str, token_id: int) -> None:
        """Revoke a token; the very next sign-in with it fails."""
        async with self._db.write() as conn:
            owner_id = await user_id(conn, username)
            result = await conn.execute(
                update(AccessToken)
                .where(AccessToken.id == token_id, AccessToken.user_id == owner_id)
                .values(active=False)
                .returning(AccessToken.id)
            )
            if result.first() is None:
                raise NotFound(f"user {username!r} has no access token {token_id}")

    async def authenticate(self, username: str, secret: str) -> str | None:
        """The canonical username if ``secret`` is the user's password or live token."""
        username = username.strip().lower()
        if not username or not secret:
            return None
        if looks_like_access_token(secret):
            name = await self._authenticate_token(username, secret)
            if name is not None:
                return name
        return await self._authenticate_password(username, secret)

    async def _authenticate_token(self, username: str, secret: str) -> str | None:
        now = self._clock()
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        AccessToken.id,
                        AccessToken.active,
                        AccessToken.expires_at,
                        AccessToken.last_used_at,
                        User.name,
                    )
                    .join(User, AccessToken.user_id == User.id)
                    .where(AccessToken.token_hash == token_digest(secret), User.name == username)
                )
            ).first()
        if row is None:
            return None
        token_id, active, expires_at, last_used_at, name = row
        if not active or (expires_at is not None and expires_at <= now):
            return None
        if last_used_at is None or last_used_at <= now - self._touch_interval:
            await self._touch(token_id, now)
        return name

    async def _touch(self, token_id: int, now: dt.datetime) -> None:
        stale = now - self._touch_interval
        try:
            async with self._db.write() as conn:
                # The condition makes concurrent sign-ins write once, not once each.
                await conn.execute(
                    update(AccessToken)
                    .where(
                        AccessToken.id == token_id,
                        or_(AccessToken.last_used_at.is_(None), AccessToken.last_used_at <= stale),
                    )
                    .values(last_used_at=now)
                )
        except SQLAlchemyError as exc:  # bookkeeping must not turn a valid sign-in away
            log.warning("could not record use of access token %d: %s", token_id, exc)

    async def _authenticate_password(self, username: str, secret: str) -> str | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(User.name, User.password_hash).where(User.name == username)
                )
            ).first()
        if row is None:
            return None
        name, password_hash = row
        if self._cache.verified(name, secret, password_hash):
            return name
        check = await asyncio.to_thread(self._hasher.verify, password_hash, secret)
        if not check.ok:
            return None
        if check.needs_rehash:
            password_hash = await self._rehash(name, password_hash, secret)
        self._cache.remember(name, secret, password_hash)
        return name

    async def _rehash(self, username: str, old_hash: str, password: str) -> str:
        """Upgrade a hash made with older parameters, unless the password changed meanwhile."""
        new_hash = await asyncio.to_thread(self._hasher.hash, password)
        async with self._db.write() as conn:
            result = await conn.execute(
                update(User)
                .where(User.name == username, User.password_hash == old_hash)
                .values(password_hash=new_hash)
                .returning(User.id)
            )
            return new_hash if result.first() is not None else old_hash
