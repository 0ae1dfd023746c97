"""Shared fixtures: settings on a fresh registry (SQLite, or PostgreSQL when asked), services,
an API client. Plain helpers (the acting operator, access tokens) are in ``tests.factories``.

``ECONTRACT_TEST_DATABASE_URL`` switches the registry to a PostgreSQL server; every test then
gets its own schema (or, when it asks for ``initialised``, its own database), dropped
afterwards. Tests that use the registry are marked ``registry`` so that ``make test`` runs
them a second time on PostgreSQL. ``initialised`` starts from a copy of a registry initialised
once per run (:mod:`tests.registry_template`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from econtract.bootstrap import initialise
from econtract.config import Settings
from econtract.services import Services
from tests.registry_template import (
    DatabaseCopies,
    RegistryTemplate,
    create_postgresql_database,
    create_schema,
    database_url_of,
    drop_postgresql_database,
    empty_schema,
    make_template,
)

PG_URL = os.environ.get("ECONTRACT_TEST_DATABASE_URL")
REGISTRY_FIXTURES = {"settings", "services", "initialised", "api_client", "cli_env"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "registry: uses the registry database (run on PostgreSQL too)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REGISTRY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.registry)


@pytest.fixture(scope="session")
def registry_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryTemplate]:
    """The registry after ``econtract init``, made once: ``initialised`` starts from a copy."""
    root = tmp_path_factory.mktemp("registry-template")
    if not PG_URL:
        yield make_template(registry_settings(root, f"sqlite:///{root / 'registry.db'}"))
        return
    name = create_postgresql_database(PG_URL)
    try:
        url = database_url_of(PG_URL, name)
        create_schema(url)
        yield make_template(registry_settings(root, url))
    finally:
        drop_postgresql_database(PG_URL, name)


@pytest.fixture(scope="session")
def database_copies(registry_template: RegistryTemplate) -> Iterator[DatabaseCopies]:
    """Copies of the PostgreSQL template database, made ahead and dropped behind the tests."""
    assert PG_URL is not None
    assert registry_template.database is not None
    copies = DatabaseCopies(PG_URL, registry_template.database)
    yield copies
    copies.close()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file, or a fresh PostgreSQL schema.

    On PostgreSQL a test that asks for ``initialised`` gets a database of its own, copied from
    the registry template (``initialised`` empties it when the test's settings do not fit).
    """
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    if "initialised" in request.fixturenames:
        copies: DatabaseCopies = request.getfixturevalue("database_copies")
        name = copies.take()
        try:
            yield database_url_of(PG_URL, name)
        finally:
            copies.give_back(name)
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def registry_settings(tmp_path: Path, database_url: str) -> Settings:
    """Development settings on a data directory under ``tmp_path`` and ``database_url``."""
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "var",
        database_url=database_url,
        key_passphrase="test-passphrase-0123",
        # Every test's init creates about ten keys; OWASP's 600,000 PBKDF2 rounds would add
        # seconds to each. tests/test_key_files.py checks the files the default writes.
        key_kdf_rounds=1000,
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Development settings on a fresh data directory and database."""
    return registry_settings(tmp_path, database_url)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """Services on the fresh registry (not initialised)."""
    services = Services(settings=settings)
    yield services
    services.dispose()


@pytest.fixture
def initialised(services: Services, registry_template: RegistryTemplate) -> Services:
    """Services after ``econtract init``: schema, PKI, demo department and seals (a copy of
    the registry template when the test's settings fit it, else initialised for the test)."""
    if registry_template.fits(services.settings):
        services.dispose()
        registry_template.copy_files(services.settings)
        return services
    if PG_URL:
        # The database was copied from the template for nothing: the test starts empty.
        empty_schema(services.settings.effective_database_url)
    initialise(services)
    return services


@pytest.fixture
def api_client(initialised: Services) -> Iterator[TestClient]:
    """The API of the initialised registry, served in process (lifespan run)."""
    # Imported here: the tests of signing/, verify/ and keys/ do not load the web app.
    from api import create_app  # noqa: PLC0415

    with TestClient(create_app(initialised.settings)) as client:
        yield client
