"""Fixtures of the econtract tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from econtract.config import Settings, get_settings


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment variables that point the CLI at the test's data directory and database."""
    env = {
        "ECONTRACT_DATA_DIR": str(settings.data_dir),
        "ECONTRACT_DATABASE_URL": settings.effective_database_url,
        "ECONTRACT_KEY_PASSPHRASE": "test-passphrase-0123",
        "ECONTRACT_KEY_KDF_ROUNDS": str(settings.key_kdf_rounds),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(settings.data_dir.parent)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()
