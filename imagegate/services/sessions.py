"""Signed-in sessions of the management API and the console, kept in the database.

Signing in (``sign_in``) makes a session; every API request (its bearer token's ``jti``)
and console request (its cookie) is checked against it (``check``): one indexed read
joining the session to its user and, for a session made with an access token, to that
token. A session is tied to the credential it was made with, so it ends at the very
next request after

- its access token is deactivated, deleted or expires (deactivating and deleting a
  token delete its sessions, so reactivating it brings none back),
- its user's password changes (a session keeps the password version it was made with;
  every change raises the user's version),
- it is signed out (``end`` deletes it), or it expires.

State lives in the database, never in process memory: every gateway process on one
database agrees, and a sign-out on one ends the session on all of them. Only the
SHA-256 of a session's secret is stored, as for access tokens.

Enforce sign-in (``SignInService.refusal``) applies to both: a user outside the allowed
organizations cannot sign in, and a session made before the file changed is refused on
its next request.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, insert, null, select

from imagegate.audit.events import AuditEvent, login, signed_in_event
from imagegate.core.authorization import Caller, Reach, reach_of
from imagegate.core.signin import SignInRefusal
from imagegate.db import Database
from imagegate.db.models import AccessToken, Session, User
from imagegate.services.accounts import AccountService, live_token
from imagegate.services.common import Clock, utcnow
from imagegate.services.credentials import SignedIn
from imagegate.services.signin import SignInService

_SECRET_BYTES = 32
# Longer values are never a session's secret; refusing them unhashed bounds the work.
MAX_SECRET_LENGTH = 64


class Ended(enum.StrEnum):
    """Why a session no longer signs anyone in."""

    UNKNOWN = "unknown"  # signed out, its token deactivated or deleted, or never made here
    EXPIRED = "expired"
    PASSWORD_CHANGED = "password-changed"
    # Deactivation deletes its sessions; only an older version left such rows behind.
    TOKEN_REVOKED = "token-revoked"
    TOKEN_EXPIRED = "token-expired"

    @property
    def message(self) -> str:
        return _ENDED[self]


_ENDED = {
    Ended.UNKNOWN: (
        "this session has ended (signed out, or its access token was deactivated or deleted)"
    ),
    Ended.EXPIRED: "this session has expired",
    Ended.PASSWORD_CHANGED: "this session ended because the password was changed",
    Ended.TOKEN_REVOKED: "this session ended because its access token was deactivated",
    Ended.TOKEN_EXPIRED: "this session ended because its access token expired",
}


@dataclass(frozen=True)
class SessionUser:
    """Who a live session signs in, and with what."""

    caller: Caller  # name, reach and admin flag, for the authorization rule
    scopes: tuple[str, ...] | None  # the access token's scopes; None: a password
    token_uuid: str | None
    expires_at: dt.datetime

    @property
    def username(self) -> str:
        return self.caller.username

    @property
    def reach(self) -> Reach:
        return self.caller.reach


@dataclass(frozen=True)
class SignIn:
    """A sign-in's outcome: a session and its secret (given here only), or none."""

    user: SessionUser | None = None
    secret: str = ""
    refusal: SignInRefusal | None = None  # enforce sign-in turned the user away
    username: str = ""  # who the credentials belong to, when they were right

    def audit_event(self, name: str, *, via: str) -> AuditEvent:
        """The audit trail's record of this attempt to sign in as ``name``."""
        if self.refusal is not None:
            refusal = self.refusal
            return login(
                self.username,
                signed_in=False,
                outcome=refusal.kind.value,
                reason=refusal.reason,
                via=via,
            )
        return signed_in_event(name, self.username or None, via=via)


@dataclass(frozen=True)
class Checked:
    """A session as one request finds it: live (``user``), or why not."""

    user: SessionUser | None
    ended: Ended | None = None
    refusal: SignInRefusal | None = None  # live, but enforce sign-in refuses its user


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


# Built once: on SQLite ``snapshot`` compiles each statement once (Database.snapshot).
_SESSION = (
    select(
        Session.expires_at,
        Session.password_version,
        Session.token_id,
        User.name,
        User.is_admin,
        User.password_version,
        AccessToken.active,
        AccessToken.expires_at,
        AccessToken.scopes,
        AccessToken.uuid,
    )
    .join(User, User.id == Session.user_id)
    .outerjoin(AccessToken, AccessToken.id == Session.token_id)
    .where(Session.secret_hash == bindparam("digest"))
)


def _ended(row: Any, now: dt.datetime) -> Ended | None:
    """Why the session in ``row`` (a ``_SESSION`` row) has ended, or ``None``."""
    expires_at, version, token_id, _, _, current_version, active, token_expires, _, _ = row
    if expires_at <= now:
        return Ended.EXPIRED
    if token_id is None:
        return Ended.PASSWORD_CHANGED if version != current_version else None
    if not active:
        return Ended.TOKEN_REVOKED
    if token_expires is not None and token_expires <= now:
        return Ended.TOKEN_EXPIRED
    return None


def _user(row: Any) -> SessionUser:
    expires_at, _, token_id, name, is_admin, _, _, _, scopes, token_uuid = row
    token_scopes = tuple(scopes.split()) if token_id is not None else None
    caller = Caller(name, reach_of(token_scopes), bool(is_admin), password=token_id is None)
    return SessionUser(caller, token_scopes, token_uuid, expires_at)


class SessionService:
    def __init__(
        self,
        db: Database,
        accounts: AccountService,
        signin: SignInService,
        *,
        clock: Clock = utcnow,
    ) -> None:
        self._db = db
        self._accounts = accounts
        self._signin = signin
        self._clock = clock

    async def sign_in(
        self, name: str, secret: str, *, lifetime: dt.timedelta, client: str | None = None
    ) -> SignIn:
        """Check ``name``'s password or access token and make a session of ``lifetime``.

        ``client`` is the address the attempt comes from, for the sign-in throttle;
        ``TooManyAttempts`` passes through.

        No session when the credentials are wrong, when enforce sign-in refuses the user
        (``refusal``), or when the credential changed while it was being checked.
        Nothing is read here before ``authenticate`` has checked (and throttled) the
        attempt: a refused one costs no database read."""
        user = await self._accounts.authenticate(name, secret, client=client)
        if user is None:
            return SignIn()
        refusal = await self._signin.refusal(str(user))
        if refusal is not None:
            return SignIn(refusal=refusal, username=str(user))
        session_secret = secrets.token_urlsafe(_SECRET_BYTES)
        opened = await self._open(user, session_secret, lifetime)
        if opened is None:
            return SignIn()
        return SignIn(opened, session_secret, username=str(user))

    async def _open(
        self, user: SignedIn, secret: str, lifetime: dt.timedelta
    ) -> SessionUser | None:
        """Insert the session if its credential is still the one that was checked (the
        row locked until the session exists); ``None`` if it no longer is: its token
        revoked, or its password changed since the version ``authenticate`` verified."""
        now = self._clock()
        username, token_uuid, version = str(user), user.token_uuid, user.password_version
        credential: Select[int, int | None]
        if token_uuid is not None:
            credential = (
                select(User.id, AccessToken.id)
                .join(AccessToken, AccessToken.user_id == User.id)
                .where(User.name == username, AccessToken.uuid == token_uuid, live_token(now))
            )
        else:
            credential = select(User.id, null().label("token_id")).where(
                User.name == username, User.password_version == version
            )
        digest = _digest(secret)
        async with self._db.write() as conn:
            found = (await conn.execute(credential.with_for_update())).first()
            if found is None:
                return None
            user_id, token_id = found
            await conn.execute(
                delete(Session).where(Session.user_id == user_id, Session.expires_at <= now)
            )  # expired sessions pile up only until their user next signs in
            await conn.execute(
                insert(Session).values(
                    secret_hash=digest,
                    user_id=user_id,
                    token_id=token_id,
                    password_version=version if token_id is None else None,
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )
            row = (await conn.execute(_SESSION, {"digest": digest})).first()
        assert row is not None
        return _user(row)

    async def check(self, secret: str) -> Checked:
        """The session with ``secret``, checked against its credential right now."""
        if not secret or len(secret) > MAX_SECRET_LENGTH:
            return Checked(None, Ended.UNKNOWN)
        [rows] = await self._db.snapshot((_SESSION, {"digest": _digest(secret)}))
        if not rows:
            return Checked(None, Ended.UNKNOWN)
        ended = _ended(rows[0], self._clock())
        if ended is not None:
            return Checked(None, ended)
        user = _user(rows[0])
        refusal = await self._signin.refusal(user.username)
        return Checked(user, refusal=refusal)

    async def end(self, secret: str) -> None:
        """Sign out: the session with ``secret`` signs nobody in again, on any process."""
        if not secret or len(secret) > MAX_SECRET_LENGTH:
            return
        async with self._db.write() as conn:
            await conn.execute(delete(Session).where(Session.secret_hash == _digest(secret)))
