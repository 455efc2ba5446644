import os
from pathlib import Path

import pytest

from imagegate.config import ConfigError, load_settings


def test_defaults_are_embedded() -> None:
    settings = load_settings({"IMAGEGATE_DATA_DIR": "/srv/ig"})
    assert settings.data_dir == Path("/srv/ig")
    assert settings.effective_database_url == "sqlite:////srv/ig/imagegate.db"
    assert settings.cache_dir == Path("/srv/ig/cache")
    assert settings.upstream_url == "https://registry-1.docker.io"
    assert (settings.host, settings.port) == ("127.0.0.1", 5000)
    assert settings.upstream_credentials is None


def test_one_worker_per_usable_core_unless_told() -> None:
    assert load_settings({}).workers == len(os.sched_getaffinity(0))
    assert load_settings({"IMAGEGATE_WORKERS": "3"}).workers == 3
    assert load_settings({"IMAGEGATE_WORKERS": "3"}, workers="1").workers == 1  # --workers 1


def test_flags_override_environment() -> None:
    settings = load_settings({"IMAGEGATE_PORT": "6000"}, port=7000, host=None)
    assert settings.port == 7000
    assert settings.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"IMAGEGATE_UPSTREAM": "x"}, "IMAGEGATE_UPSTREAM"),
        ({"IMAGEGATE_PORT": "http"}, "IMAGEGATE_PORT"),
        ({"IMAGEGATE_PORT": "70000"}, "IMAGEGATE_PORT"),
        ({"IMAGEGATE_UPSTREAM_URL": "registry-1.docker.io"}, "IMAGEGATE_UPSTREAM_URL"),
        ({"IMAGEGATE_DATABASE_URL": "mysql://x"}, "IMAGEGATE_DATABASE_URL"),
        ({"IMAGEGATE_PUBLIC_URL": "ftp://x"}, "IMAGEGATE_PUBLIC_URL"),
        ({"IMAGEGATE_TOKEN_TTL_SECONDS": "10"}, "IMAGEGATE_TOKEN_TTL_SECONDS"),
        ({"IMAGEGATE_LOG_LEVEL": "loud"}, "IMAGEGATE_LOG_LEVEL"),
        ({"IMAGEGATE_UPSTREAM_USERNAME": "svc"}, "IMAGEGATE_UPSTREAM_PASSWORD"),
        ({"IMAGEGATE_UPLOAD_SESSIONS_PER_USER": "0"}, "IMAGEGATE_UPLOAD_SESSIONS_PER_USER"),
        (
            {"IMAGEGATE_UPLOAD_SESSIONS_PER_REPOSITORY": "many"},
            "IMAGEGATE_UPLOAD_SESSIONS_PER_REPOSITORY",
        ),
        ({"IMAGEGATE_UPLOAD_IDLE_MINUTES": "-5"}, "IMAGEGATE_UPLOAD_IDLE_MINUTES"),
        ({"IMAGEGATE_TAG_TTL_SECONDS": "-1"}, "IMAGEGATE_TAG_TTL_SECONDS"),
        ({"IMAGEGATE_TAG_STALE_SECONDS": "1.5"}, "IMAGEGATE_TAG_STALE_SECONDS"),
        ({"IMAGEGATE_MANIFEST_CACHE_MIB": "0"}, "IMAGEGATE_MANIFEST_CACHE_MIB"),
        ({"IMAGEGATE_WORKERS": "0"}, "IMAGEGATE_WORKERS"),
    ],
)
def test_bad_settings_name_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ)


def test_postgres_and_empty_hub_url() -> None:
    settings = load_settings(
        {"IMAGEGATE_DATABASE_URL": "postgresql://u@127.0.0.1/db", "IMAGEGATE_HUB_API_URL": ""}
    )
    assert settings.effective_database_url == "postgresql://u@127.0.0.1/db"
    assert settings.hub_api_url == ""


def test_audit_settings() -> None:
    settings = load_settings(
        {
            "IMAGEGATE_AUDIT_RETENTION_DAYS": "30",
            "IMAGEGATE_AUDIT_WEBHOOK_URLS": "http://hooks:8080/a, https://u:pw@siem.example/b,",
            "IMAGEGATE_REGISTRY_JSON": "/etc/imagegate/registry.json",
        }
    )
    assert settings.audit_retention_days == 30
    assert settings.audit_webhook_urls == ("http://hooks:8080/a", "https://u:pw@siem.example/b")
    assert settings.registry_json_path == Path("/etc/imagegate/registry.json")
    assert "pw" not in repr(settings)


@pytest.mark.parametrize("url", ["ftp://hooks/a", "http://u:pw@hooks:99999/a?token=s", "http:///a"])
def test_a_bad_webhook_url_is_named_without_its_secrets(url: str) -> None:
    with pytest.raises(ConfigError, match="IMAGEGATE_AUDIT_WEBHOOK_URLS") as raised:
        load_settings({"IMAGEGATE_AUDIT_WEBHOOK_URLS": url})
    assert "pw" not in str(raised.value) and "token" not in str(raised.value)


def test_tag_memory_settings() -> None:
    defaults = load_settings({})
    assert (defaults.tag_ttl_seconds, defaults.tag_stale_seconds) == (30, 30)
    assert defaults.manifest_cache_mib == 64
    settings = load_settings(
        {
            "IMAGEGATE_TAG_TTL_SECONDS": "0",
            "IMAGEGATE_TAG_STALE_SECONDS": "0",
            "IMAGEGATE_MANIFEST_CACHE_MIB": "8",
        }
    )
    assert (settings.tag_ttl_seconds, settings.tag_stale_seconds) == (0, 0)
    assert settings.manifest_cache_mib == 8
