"""Every setting, typed and read once, from the environment (flags may override).

One ``Settings`` serves ``imagegate serve`` and every admin command. An unknown
``IMAGEGATE_*`` variable or a malformed value stops startup with a message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PREFIX = "IMAGEGATE_"
DEFAULT_UPSTREAM_URL = "https://registry-1.docker.io"
DEFAULT_HUB_API_URL = "https://hub.docker.com"


class ConfigError(Exception):
    """A setting is unknown or malformed; the message names it."""


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0))


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "imagegate"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=_default_data_dir)
    database_url: str = ""  # empty: SQLite in the data dir
    upstream_url: str = DEFAULT_UPSTREAM_URL
    upstream_username: str = ""
    upstream_password: str = field(default="", repr=False)
    public_url: str = ""  # empty: derived from each request's Host header
    hub_api_url: str = DEFAULT_HUB_API_URL  # empty: no publisher lookups (overrides only)
    host: str = "127.0.0.1"
    port: int = 5000
    # Processes serving requests (``imagegate serve --workers``): one per usable core.
    workers: int = field(default_factory=_usable_cores)
    log_level: str = "info"
    token_ttl_seconds: int = 300
    upstream_timeout_seconds: float = 30.0
    # Enforce sign-in: a Docker Desktop registry.json ({"allowedOrgs": [...]}). Empty:
    # DATA_DIR/registry.json when that file exists, else sign-in is not enforced.
    registry_json: str = ""
    audit_retention_days: int = 365
    # Open blob uploads one user, and one repository, may hold; and how long an upload
    # that receives nothing stays open.
    upload_sessions_per_user: int = 50
    upload_sessions_per_repository: int = 100
    upload_idle_minutes: int = 15
    # Where audit events are sent as CNCF distribution notifications (comma-separated).
    audit_webhook_urls: tuple[str, ...] = field(default=(), repr=False)  # may hold secrets
    # Sent as the Authorization header of every webhook request, when set.
    audit_webhook_authorization: str = field(default="", repr=False)
    # How long a tag resolved upstream is answered from memory (0: asked upstream on every
    # request), and how much longer its old digest is served while one request revalidates it.
    tag_ttl_seconds: int = 30
    tag_stale_seconds: int = 30
    # The memory (per worker process) for manifests served by digest.
    manifest_cache_mib: int = 64

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def registry_json_path(self) -> Path:
        """The registry.json to enforce: the configured one, else the data directory's.

        A configured file must exist (the gateway fails closed without it); the data
        directory's may come and go (``registry_json_optional``).
        """
        if self.registry_json:
            return Path(self.registry_json).expanduser()
        return self.data_dir / "registry.json"

    @property
    def registry_json_optional(self) -> bool:
        """Whether a missing registry.json means "not enforced" rather than an error."""
        return not self.registry_json

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'imagegate.db'}"

    @property
    def upstream_credentials(self) -> tuple[str, str] | None:
        if self.upstream_username:
            return (self.upstream_username, self.upstream_password)
        return None


_ENV_NAMES = {f.name: PREFIX + f.name.upper() for f in fields(Settings)}
_LOG_LEVELS = ("debug", "info", "warning", "error")


def _url(name: str, value: str, *, allow_empty: bool = False) -> str:
    if not value and allow_empty:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}: {value!r} is not an http:// or https:// URL")
    return value.rstrip("/")


def _webhook_url(name: str, value: str) -> str:
    """A receiver's URL, checked fully now; messages never repeat its user info or query."""
    parts = urlsplit(value)
    shown = f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 (raises ValueError for a port that is no number)
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(
            f"{name}: {shown!r} is not an http:// or https:// URL with a valid host and port"
        )
    return value


def _whole_number(name: str, value: str, upper: int | None = None, lower: int = 1) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a whole number") from None
    if number < lower or (upper is not None and number > upper):
        limit = f" between {lower} and {upper}" if upper else f" of at least {lower}"
        raise ConfigError(f"{name}: {value!r} must be a number{limit}")
    return number


def _parse(name: str, env_name: str, value: str) -> Any:
    if name == "data_dir":
        if not value:
            raise ConfigError(f"{env_name}: must not be empty")
        return Path(value).expanduser()
    if name == "database_url":
        scheme = urlsplit(value).scheme.split("+")[0]
        if value and scheme not in ("sqlite", "postgresql", "postgres"):
            raise ConfigError(f"{env_name}: {value!r} is not a sqlite:/// or postgresql:// URL")
        return value
    if name in ("upstream_url",):
        return _url(env_name, value)
    if name in ("public_url", "hub_api_url"):
        return _url(env_name, value, allow_empty=True)
    if name == "audit_webhook_urls":
        return tuple(_webhook_url(env_name, url.strip()) for url in value.split(",") if url.strip())
    if name in (
        "audit_retention_days",
        "upload_sessions_per_user",
        "upload_sessions_per_repository",
        "upload_idle_minutes",
        "manifest_cache_mib",
        "workers",
    ):
        return _whole_number(env_name, value)
    if name in ("tag_ttl_seconds", "tag_stale_seconds"):
        return _whole_number(env_name, value, lower=0)  # 0 turns it off
    if name == "port":
        return _whole_number(env_name, value, 65535)
    if name == "token_ttl_seconds":
        ttl = _whole_number(env_name, value)
        if ttl < 60:
            raise ConfigError(f"{env_name}: {value!r} must be at least 60 seconds")
        return ttl
    if name == "upstream_timeout_seconds":
        try:
            seconds = float(value)
        except ValueError:
            raise ConfigError(f"{env_name}: {value!r} is not a number of seconds") from None
        if seconds <= 0:
            raise ConfigError(f"{env_name}: {value!r} must be greater than 0")
        return seconds
    if name == "log_level":
        if value.lower() not in _LOG_LEVELS:
            raise ConfigError(f"{env_name}: {value!r} is not one of {', '.join(_LOG_LEVELS)}")
        return value.lower()
    return value


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``); flags override.

    Overrides whose value is ``None`` are ignored, so CLI flags can be passed as is.
    """
    environ = os.environ if environ is None else environ
    known = set(_ENV_NAMES.values())
    for key in environ:
        if key.startswith(PREFIX) and key not in known:
            raise ConfigError(
                f"{key}: unknown setting; known settings are {', '.join(sorted(known))}"
            )
    values: dict[str, Any] = {}
    for name, env_name in _ENV_NAMES.items():
        if env_name in environ:
            values[name] = _parse(name, env_name, environ[env_name])
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in _ENV_NAMES:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = _parse(name, f"--{name.replace('_', '-')}", str(value))
    settings = Settings(**values)
    if bool(settings.upstream_username) != bool(settings.upstream_password):
        raise ConfigError(
            "IMAGEGATE_UPSTREAM_USERNAME and IMAGEGATE_UPSTREAM_PASSWORD must be set together"
        )
    return settings


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, **changes)
