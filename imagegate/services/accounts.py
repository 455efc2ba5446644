"""Users, their passwords and personal access tokens, and signing in with either.

``authenticate`` sits on the hot path: registry clients send Basic credentials to the
token endpoint on every pull. Access tokens are checked with one indexed lookup of their
SHA-256 digest; passwords with argon2 (on the hasher's own threads, so the event loop
keeps serving). A credential that signed in is remembered by a ``CredentialCache`` until
anything changes (the generation), so the next sign-ins with it read no database.
Every attempt passes the ``SignInThrottle`` first, and identical attempts in flight at
once (a client pulling several images) are checked once. What a sign-in yields
(``SignedIn``) and what may be shown of a token (``TokenInfo``) are ``services.credentials``.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from imagegate.auth.cache import digest_key
from imagegate.auth.passwords import (
    PasswordHasher,
    looks_like_access_token,
    new_access_token,
    token_digest,
)
from imagegate.core.authorization import Reach, reach_of
from imagegate.core.inputs import text_problem
from imagegate.db import Database
from imagegate.db.models import AccessToken, Session, User
from imagegate.services.audit_changes import record
from imagegate.services.common import Clock, account_name, claim_account_name, user_id, utcnow
from imagegate.services.credential_cache import CredentialCache, TokenUse, Verified
from imagegate.services.credentials import (
    DEFAULT_SCOPES,
    MAX_CREDENTIAL_LENGTH,
    SignedIn,
    TokenInfo,
    check_scopes,
)
from imagegate.services.current_cache import CurrentCache
from imagegate.services.errors import AlreadyExists, InvalidInput, NotFound
from imagegate.services.inflight import InFlight
from imagegate.services.throttle import SignInThrottle

log = logging.getLogger(__name__)

MAX_TOKEN_LIFETIME_DAYS = 3650
_MAX_DESCRIPTION_LENGTH = 255
_MAX_EMAIL_LENGTH = 254
# What ``CredentialCache`` keeps apart: a secret checked as an access token or a password.
_TOKEN = "token"
_PASSWORD = "password"
# Access tokens whose liveness a push checked (``token_live``): by user and uuid.
_LIVENESS_BYTES = 1024 * 1024
_LIVENESS_TTL_SECONDS = 600.0
_LIVENESS_ENTRY_BYTES = 256


class _Token(enum.Enum):
    """Why an access token signs nobody in."""

    UNKNOWN = "no such token of this user"
    DEAD = "revoked or expired"


@dataclass(frozen=True)
class UserInfo:
    name: str
    email: str | None
    created_at: dt.datetime
    is_admin: bool = False


def _check_password(password: str) -> str:
    if not password:
        raise InvalidInput("the password must not be empty")
    if len(password) > MAX_CREDENTIAL_LENGTH:
        raise InvalidInput(f"the password is longer than {MAX_CREDENTIAL_LENGTH} characters")
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


_TOKEN_COLUMNS = (
    AccessToken.id,
    AccessToken.description,
    AccessToken.created_at,
    AccessToken.expires_at,
    AccessToken.last_used_at,
    AccessToken.active,
    AccessToken.uuid,
    AccessToken.scopes,
    AccessToken.creator_ip,
    AccessToken.creator_ua,
)


def live_token(now: dt.datetime) -> ColumnElement[bool]:
    """What an access token's row meets while it signs anyone in: active, not expired."""
    return and_(
        AccessToken.active.is_(True),
        AccessToken.expires_at.is_(None) | (AccessToken.expires_at > now),
    )


async def _locked_user(conn: AsyncConnection, name: str) -> Any:
    """The user's id and admin flag, the row locked until the transaction ends."""
    row = (
        await conn.execute(
            select(User.id, User.is_admin).where(User.name == name).with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"user {name!r} does not exist")
    return row


def _token_info(username: str, row: Any) -> TokenInfo:
    return TokenInfo(
        row.id,
        username,
        row.description,
        row.created_at,
        row.expires_at,
        row.last_used_at,
        bool(row.active),
        str(row.uuid),
        tuple(row.scopes.split()),
        row.creator_ip,
        row.creator_ua,
    )


class AccountService:
    """Creates users and tokens, and decides whether a (username, secret) pair signs in."""

    def __init__(
        self,
        db: Database,
        *,
        hasher: PasswordHasher | None = None,
        cache: CredentialCache | None = None,
        throttle: SignInThrottle | None = None,
        clock: Clock = utcnow,
        touch_interval: dt.timedelta = dt.timedelta(minutes=5),
    ) -> None:
        self._db = db
        self._hasher = hasher or PasswordHasher()
        self._cache = cache or CredentialCache(db.signal)
        # Whether a token is live: (live, expiry), by (user, uuid), until the next change.
        self._liveness: CurrentCache[tuple[bool, dt.datetime | None]] = CurrentCache(
            db.signal, _LIVENESS_BYTES, _LIVENESS_TTL_SECONDS
        )
        self._throttle = throttle or SignInThrottle()
        self._attempts: InFlight[bytes, SignedIn | None] = InFlight()
        self._clock = clock
        # last_used_at is informational; writing it on every pull would turn each
        # read-only sign-in into a write transaction, so it is refreshed at most this often.
        self._touch_interval = touch_interval

    async def create_user(
        self, name: str, email: str | None, password: str, *, admin: bool = False
    ) -> UserInfo:
        account_name(name, "user name")
        email = _check_email(email)
        password_hash = await self._hasher.hash_async(_check_password(password))
        now = self._clock()
        try:
            async with self._db.write() as conn:
                await claim_account_name(conn, name, "user")
                await conn.execute(
                    insert(User).values(
                        name=name,
                        email=email,
                        password_hash=password_hash,
                        created_at=now,
                        is_admin=admin,
                    )
                )
                after = {"email": email, "admin": admin}
                await record(conn, "user.create", account=None, name=name, before=None, after=after)
        except IntegrityError:  # lost a race with another command creating the same name
            raise AlreadyExists(f"the name {name!r} is already taken") from None
        return UserInfo(name, email, now, admin)

    async def get_user(self, name: str) -> UserInfo:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(User.name, User.email, User.created_at, User.is_admin).where(
                        User.name == name
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"user {name!r} does not exist")
        return UserInfo(row.name, row.email, row.created_at, bool(row.is_admin))

    async def set_admin(self, name: str, admin: bool = True) -> None:
        """Make ``name`` a gateway admin (or not): admins manage publisher overrides."""
        async with self._db.write() as conn:
            user = await _locked_user(conn, name)
            if bool(user.is_admin) == admin:
                return
            await conn.execute(update(User).where(User.id == user.id).values(is_admin=admin))
            await record(
                conn,
                "user.admin.change",
                account=None,
                name=name,
                before={"admin": not admin},
                after={"admin": admin},
            )

    async def set_password(self, name: str, password: str) -> None:
        """Replace a user's password; cached sign-ins with the old one stop working, and
        so does every session made with it (its password version is raised)."""
        password_hash = await self._hasher.hash_async(_check_password(password))
        async with self._db.write() as conn:
            result = await conn.execute(
                update(User)
                .where(User.name == name)
                .values(password_hash=password_hash, password_version=User.password_version + 1)
                .returning(User.id)
            )
            if result.first() is None:
                raise NotFound(f"user {name!r} does not exist")
            # Who changed whose password, and when; nothing about either password.
            await record(
                conn, "user.password.change", account=None, name=name, before=None, after=None
            )

    async def create_token(
        self,
        username: str,
        description: str = "",
        expires_in_days: int | None = None,
        *,
        scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES,
        expires_at: dt.datetime | None = None,
        creator_ip: str = "",
        creator_ua: str = "",
    ) -> tuple[TokenInfo, str]:
        """Mint a personal access token; the secret is returned here and never again.

        ``scopes`` are kept as given (Hub's clients compare them); without ``repo:write``
        or ``repo:admin`` the token may only pull. ``expires_at`` is an alternative to
        ``expires_in_days`` and must lie in the future.
        """
        scopes = check_scopes(scopes)
        if expires_at is not None:
            if expires_in_days is not None:
                raise InvalidInput("give expires_in_days or expires_at, not both")
            if expires_at.tzinfo is None:
                raise InvalidInput("expires_at needs a time zone, e.g. 2029-12-31T23:59:59Z")
            if expires_at <= self._clock():
                raise InvalidInput("expires_at is in the past")
        if len(description) > _MAX_DESCRIPTION_LENGTH:
            raise InvalidInput(
                f"the description is longer than {_MAX_DESCRIPTION_LENGTH} characters"
            )
        if expires_in_days is not None and not 0 < expires_in_days <= MAX_TOKEN_LIFETIME_DAYS:
            raise InvalidInput(
                f"a token expires in 1 to {MAX_TOKEN_LIFETIME_DAYS} days, not {expires_in_days}"
            )
        now = self._clock()
        if expires_in_days:
            expires_at = now + dt.timedelta(days=expires_in_days)
        token = new_access_token()
        token_uuid = str(uuid.uuid4())
        creator_ua = creator_ua[:255]
        creator_ip = creator_ip[:45]
        async with self._db.write() as conn:
            owner_id = await user_id(conn, username)
            token_id = await conn.scalar(
                insert(AccessToken)
                .values(
                    user_id=owner_id,
                    uuid=token_uuid,
                    scopes=" ".join(scopes),
                    creator_ip=creator_ip,
                    creator_ua=creator_ua,
                    token_hash=token.digest,
                    description=description,
                    created_at=now,
                    expires_at=expires_at,
                )
                .returning(AccessToken.id)
            )
            assert token_id is not None
            info = TokenInfo(
                token_id,
                username,
                description,
                now,
                expires_at,
                None,
                True,
                token_uuid,
                scopes,
                creator_ip,
                creator_ua,
            )
            await record(
                conn,
                "user.access_token.create",
                account=None,
                name=username,
                before=None,
                after=info.audit(),
            )
        return info, token.secret

    async def list_tokens(self, username: str) -> list[TokenInfo]:
        """The user's tokens, oldest first; never their secrets."""
        async with self._db.read() as conn:
            owner_id = await user_id(conn, username)
            rows = await conn.execute(
                select(*_TOKEN_COLUMNS)
                .where(AccessToken.user_id == owner_id)
                .order_by(AccessToken.id)
            )
            return [_token_info(username, r) for r in rows]

    async def get_token(self, username: str, token_uuid: str) -> TokenInfo:
        """One of the user's tokens by UUID (``NotFound`` for anyone else's)."""
        async with self._db.read() as conn:
            owner_id = await user_id(conn, username)
            row = (
                await conn.execute(
                    select(*_TOKEN_COLUMNS).where(
                        AccessToken.user_id == owner_id, AccessToken.uuid == token_uuid
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"access token {token_uuid!r} not found")
        return _token_info(username, row)

    async def update_token(
        self,
        username: str,
        token_uuid: str,
        *,
        active: bool | None = None,
        description: str | None = None,
    ) -> TokenInfo:
        """(Re)activate or revoke a token, or change its description, in one UPDATE;
        revoking it ends every session made with it."""
        changes: dict[str, object] = {}
        if active is not None:
            changes["active"] = active
        if description is not None:
            if len(description) > _MAX_DESCRIPTION_LENGTH:
                raise InvalidInput(
                    f"the description is longer than {_MAX_DESCRIPTION_LENGTH} characters"
                )
            changes["description"] = description
        if not changes:
            return await self.get_token(username, token_uuid)
        missing = f"access token {token_uuid!r} not found"
        return await self._change_token(username, AccessToken.uuid == token_uuid, changes, missing)

    async def _change_token(
        self, username: str, which: ColumnElement[bool], changes: dict[str, Any], missing: str
    ) -> TokenInfo:
        """Apply ``changes`` (``TokenInfo`` field names that are also columns) to the
        user's token ``which``, and record them; ``NotFound(missing)`` when there is none."""
        async with self._db.write() as conn:
            owner_id = await user_id(conn, username)
            row = (
                await conn.execute(
                    select(*_TOKEN_COLUMNS)
                    .where(and_(AccessToken.user_id == owner_id, which))
                    .with_for_update()
                )
            ).first()
            if row is None:
                raise NotFound(missing)
            before = _token_info(username, row)
            after = replace(before, **changes)
            if after == before:
                return after
            await conn.execute(
                update(AccessToken).where(AccessToken.id == before.id).values(**changes)
            )
            if after.active != before.active:
                # Deactivation ends the token's sessions for good, in this transaction:
                # reactivating it later must not bring them back. (On reactivation this
                # clears sessions a version that only checked ``active`` left behind.)
                await conn.execute(delete(Session).where(Session.token_id == before.id))
            await record(
                conn,
                "user.access_token.update",
                account=None,
                name=username,
                before=before.audit(),
                after=after.audit(),
            )
            return after

    async def delete_token(self, username: str, token_uuid: str) -> None:
        """Delete a token for good; the very next sign-in with it fails."""
        async with self._db.write() as conn:
            owner_id = await user_id(conn, username)
            row = (
                await conn.execute(
                    delete(AccessToken)
                    .where(AccessToken.user_id == owner_id, AccessToken.uuid == token_uuid)
                    .returning(*_TOKEN_COLUMNS)
                )
            ).first()
            if row is None:
                raise NotFound(f"access token {token_uuid!r} not found")
            await record(
                conn,
                "user.access_token.delete",
                account=None,
                name=username,
                before=_token_info(username, row).audit(),
                after=None,
            )

    async def token_live(self, username: str, token_uuid: str) -> bool:
        """Whether ``username``'s access token ``token_uuid`` still signs in (active, not
        expired), for pushes with a registry token issued for it: one indexed read, then
        remembered until the next change (or the token's expiry)."""
        now = self._clock()

        async def read() -> tuple[bool, dt.datetime | None]:
            async with self._db.read() as conn:
                row = (
                    await conn.execute(
                        select(AccessToken.active, AccessToken.expires_at)
                        .join(User, AccessToken.user_id == User.id)
                        .where(User.name == username, AccessToken.uuid == token_uuid)
                    )
                ).first()
            return (False, None) if row is None else (bool(row.active), row.expires_at)

        key = digest_key(username, token_uuid)
        size = _LIVENESS_ENTRY_BYTES + len(username) + len(token_uuid)
        active, expires_at = await self._liveness.get(key, read, lambda _: size)
        return active and (expires_at is None or expires_at > now)

    async def deactivate_token(self, username: str, token_id: int) -> None:
        """Revoke a token; the very next sign-in with it fails, and its sessions end."""
        missing = f"user {username!r} has no access token {token_id}"
        await self._change_token(username, AccessToken.id == token_id, {"active": False}, missing)

    async def authenticate(
        self, username: str, secret: str, *, client: str | None = None
    ) -> SignedIn | None:
        """The canonical username if ``secret`` is the user's password or live token.

        The name is a ``SignedIn``: its ``reach`` tells how far the credential goes.
        ``client`` is the address the attempt comes from, for the ``SignInThrottle``;
        raises ``TooManyAttempts`` when it turns the attempt away.
        """
        name = username.strip().lower()
        if not name or not secret or max(len(name), len(secret)) > MAX_CREDENTIAL_LENGTH:
            return None  # before the throttle: nothing it could hold is spent on these
        remembered = self._remembered(client, name, secret)
        if remembered is not None:
            return remembered
        key = self._cache.fingerprint(client or "", name, secret)
        return await self._attempts.run(key, lambda: self._attempt(client, name, secret))

    def _remembered(self, client: str | None, name: str, secret: str) -> SignedIn | None:
        """Who a credential that signed in since the last change signs in, recognized
        without the database, argon2 or even a wait (the hot path of every pull); None
        when it needs the full check. A password still passes the throttle, as in
        ``_attempt``; only what signed in is ever remembered, so the text is usable."""
        if looks_like_access_token(secret):
            known, _ = self._cache.lookup(_TOKEN, name, secret)
            if known is not None and known.token is not None:
                # Expired, or due to have its use recorded: ``_authenticate_token``.
                return known.signed_in if self._current(known.token) else None
        known, _ = self._cache.lookup(_PASSWORD, name, secret)
        if known is None:
            return None
        with self._throttle.attempt(client, name) as attempt:
            attempt.succeeded()
        return known.signed_in

    def _current(self, token: TokenUse) -> bool:
        """Not expired, and its last use recorded recently enough."""
        now = self._clock()
        if token.expires_at is not None and token.expires_at <= now:
            return False
        return token.last_used_at is not None and token.last_used_at > now - self._touch_interval

    async def _attempt(self, client: str | None, name: str, secret: str) -> SignedIn | None:
        # Text no name or password can be (JSON may hold lone surrogates; PostgreSQL
        # takes no NUL) is refused without a lookup, whether the user exists or not.
        usable = text_problem(name) is None and text_problem(secret) is None
        if usable and looks_like_access_token(secret):
            # Checked before the throttle: 256 random bits cannot be guessed, so a real
            # token keeps working while someone attacks its user's name.
            token = await self._authenticate_token(name, secret)
            if isinstance(token, SignedIn):
                return token
            if token is _Token.DEAD:
                return None  # a real secret, revoked or expired: not a guess to count
        with self._throttle.attempt(client, name) as attempt:
            user = await self._authenticate_password(name, secret) if usable else None
            if user is None:
                attempt.failed()
            else:
                attempt.succeeded()
            return user

    async def _authenticate_token(self, username: str, secret: str) -> SignedIn | _Token:
        """Who a live access token of ``username`` signs in, or why it does not."""
        now = self._clock()
        known, generation = self._cache.lookup(_TOKEN, username, secret)
        fresh = known is None
        if known is None:
            read = await self._read_token(username, secret)
            if isinstance(read, _Token):
                return read
            known = read
        token = known.token
        assert token is not None  # only access tokens are remembered as _TOKEN
        if token.expires_at is not None and token.expires_at <= now:
            return _Token.DEAD
        if token.last_used_at is None or token.last_used_at <= now - self._touch_interval:
            await self._touch(token.id, now)
            known = replace(known, token=replace(token, last_used_at=now))
            fresh = True
        if fresh:
            self._cache.remember(_TOKEN, username, secret, known, generation)
        return known.signed_in

    async def _read_token(self, username: str, secret: str) -> Verified | _Token:
        """The user's active access token with this secret (expired or not), or why not."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        AccessToken.id,
                        AccessToken.active,
                        AccessToken.expires_at,
                        AccessToken.last_used_at,
                        User.name,
                        AccessToken.scopes,
                        AccessToken.uuid,
                    )
                    .join(User, AccessToken.user_id == User.id)
                    .where(AccessToken.token_hash == token_digest(secret), User.name == username)
                )
            ).first()
        if row is None:
            return _Token.UNKNOWN
        token_id, active, expires_at, last_used_at, name, scopes, token_uuid = row
        if not active:
            return _Token.DEAD
        signed_in = SignedIn(name, reach_of(scopes.split()), token_uuid=token_uuid)
        return Verified(signed_in, TokenUse(token_id, expires_at, last_used_at))

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

    async def _authenticate_password(self, username: str, secret: str) -> SignedIn | None:
        known, generation = self._cache.lookup(_PASSWORD, username, secret)
        if known is not None:
            return known.signed_in
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(User.name, User.password_hash, User.password_version).where(
                        User.name == username
                    )
                )
            ).first()
        if row is None:
            await self._hasher.verify_unknown_user(secret)  # as slow as a wrong password
            return None
        # The version is read with the hash (one UPDATE changes both): a session made
        # with it is stillborn if the password changes before the session exists.
        name, password_hash, version = row
        check = await self._hasher.verify_async(password_hash, secret)
        if not check.ok:
            return None
        if check.needs_rehash:
            await self._rehash(name, password_hash, secret)
        signed_in = SignedIn(name, Reach.WRITE, password_version=version)
        self._cache.remember(_PASSWORD, username, secret, Verified(signed_in), generation)
        return signed_in

    async def _rehash(self, username: str, old_hash: str, password: str) -> None:
        """Upgrade a hash made with older parameters, unless the password changed meanwhile.

        Not a change of the password: nothing is recorded, and what the credential cache
        remembers stays good."""
        new_hash = await self._hasher.hash_async(password)
        async with self._db.write() as conn:
            await conn.execute(
                update(User)
                .where(User.name == username, User.password_hash == old_hash)
                .values(password_hash=new_hash)
            )
