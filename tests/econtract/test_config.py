"""Settings: development defaults, production refuses placeholders naming the setting."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from econtract.config import Settings


def production(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "mode": "production",
        "public_base_url": "https://econtract.gov.example",
        "key_passphrase": "a real passphrase of some length",
        "secret_key": "a real server secret of some length",
    }
    base.update(values)
    return Settings(_env_file=None, **base)


def test_development_defaults_serve_sqlite_under_var() -> None:
    settings = Settings(_env_file=None)
    assert settings.effective_database_url == "sqlite:///var/econtract.db"
    assert settings.public_base_url == "http://127.0.0.1:8000"


def test_production_accepts_real_secrets() -> None:
    assert production().mode == "production"


def test_production_refuses_the_development_passphrase() -> None:
    with pytest.raises(
        ValidationError, match="ECONTRACT_KEY_PASSPHRASE is missing or a placeholder"
    ):
        production(key_passphrase="econtract-development-passphrase")


def test_production_refuses_a_missing_passphrase() -> None:
    with pytest.raises(ValidationError, match="ECONTRACT_KEY_PASSPHRASE"):
        production(key_passphrase=None)


def test_production_refuses_the_development_secret_key() -> None:
    with pytest.raises(ValidationError, match="ECONTRACT_SECRET_KEY"):
        production(secret_key="econtract-development-secret")


def test_production_refuses_a_loopback_public_url() -> None:
    with pytest.raises(ValidationError, match="ECONTRACT_PUBLIC_BASE_URL"):
        production(public_base_url="http://127.0.0.1:8000")


def test_production_hsm_needs_a_pin() -> None:
    with pytest.raises(ValidationError, match="ECONTRACT_PKCS11_PIN"):
        production(
            key_store="pkcs11",
            pkcs11_module="/usr/lib/softhsm/libsofthsm2.so",
            pkcs11_token="econtract",
        )


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECONTRACT_MAX_UPLOAD_BYTES", "1234")
    assert Settings(_env_file=None).max_upload_bytes == 1234
