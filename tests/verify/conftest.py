"""Fixtures of the verify tests: the shared test PKI and SM2 test PKI, policies, and sealed
documents."""

from __future__ import annotations

import logging

import pytest

from signing.options import Certification, SealLevel
from tests.testpki import TestPKI, build_test_pki
from tests.verify.forge import Sealed, seal, service_crls
from tests.verify.sm2pki import SM2TestPKI, build_sm2_test_pki
from verify.policy import VerificationPolicy


@pytest.fixture(autouse=True)
def _quiet_pyhanko() -> None:
    # pyHanko logs every failed path with a traceback; the attack tests fail paths on purpose.
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    return


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    """The shared test PKI."""
    return build_test_pki()


@pytest.fixture(scope="session")
def sm2_pki() -> SM2TestPKI:
    """The SM2 test PKI."""
    return build_sm2_test_pki()


@pytest.fixture(scope="session")
def policy(pki: TestPKI) -> VerificationPolicy:
    """The service's policy: its root and its current CRLs, no registry."""
    return VerificationPolicy(trust_roots=(pki.root.certificate,), crls=service_crls(pki))


@pytest.fixture(scope="session")
def offline_policy(pki: TestPKI) -> VerificationPolicy:
    """An auditor's policy: the root only; revocation data must come from the file."""
    return VerificationPolicy(trust_roots=(pki.root.certificate,))


@pytest.fixture(scope="session")
def licence_lt(pki: TestPKI) -> Sealed:
    """A licence certified NO_CHANGES at B-LT."""
    return seal(pki, level=SealLevel.B_LT, certification=Certification.NO_CHANGES)


@pytest.fixture(scope="session")
def approval_bb(pki: TestPKI) -> Sealed:
    """A document with one approval seal at B-B."""
    return seal(pki, level=SealLevel.B_B)


@pytest.fixture(scope="session")
def approval_lta(pki: TestPKI) -> Sealed:
    """A document with one approval seal at B-LTA."""
    return seal(pki, level=SealLevel.B_LTA)
