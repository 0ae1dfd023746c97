"""Fixtures of the keys tests: the shared test PKI and a SoftHSM2 token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keys.pkcs11store import restart_module
from keys.store import KeyStoreConfig
from tests.keys.softhsm import SOFTHSM2_MODULE, init_softhsm_token, softhsm_available
from tests.testpki import PKIFiles, TestPKI, build_test_pki

TOKEN_LABEL = "econtract-test"
SPARE_TOKEN_LABEL = "econtract-spare"
USER_PIN = "1234"


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    """The shared test PKI."""
    return build_test_pki()


@pytest.fixture(scope="session")
def pki_files(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> PKIFiles:
    """The test PKI's certificates as PEM files."""
    return pki.write_pems(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def softhsm_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyStoreConfig]:
    """A key store configuration for a fresh SoftHSM2 token (plus a spare token, never logged in).

    SoftHSM2 reads SOFTHSM2_CONF when the module is initialised, so the variable is set first
    and the module restarted in case an earlier test loaded it with another configuration.
    """
    # `make test` installs SoftHSM2; a machine without it fails here rather than skipping.
    assert softhsm_available(), "SoftHSM2 is not installed (apt-get install softhsm2)"
    directory: Path = tmp_path_factory.mktemp("softhsm")
    env = init_softhsm_token(directory, TOKEN_LABEL, USER_PIN)
    init_softhsm_token(directory, SPARE_TOKEN_LABEL, USER_PIN)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        restart_module(SOFTHSM2_MODULE)
        yield KeyStoreConfig(
            backend="pkcs11",
            pkcs11_module=SOFTHSM2_MODULE,
            pkcs11_token_label=TOKEN_LABEL,
            pkcs11_user_pin=USER_PIN,
        )
