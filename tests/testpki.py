"""The test PKI, built once per process and shared by every test that needs certificates.

Software (in-memory) keys only::

    root CA "eContract Test Root CA" (EC P-384)
      └─ issuing CA "issuing" (EC P-384)
           ├─ TSA "eContract Test TSA" (EC P-256, EKU timeStamping)
           ├─ OCSP responder (EC P-256, EKU OCSPSigning, ocsp-nocheck)
           └─ seal certificates made on demand by :meth:`TestPKI.make_seal`

URLs point at ``http://127.0.0.1:8000``. Certificates start a day before the PKI is built,
so validators on a slightly skewed clock still accept them.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keys.ca import (
    Authority,
    PKIURLs,
    SealSubject,
    create_in_memory_hierarchy,
    issue_seal_certificate,
)
from keys.handles import KeyAlgorithm, KeyHandle, SoftwareKeyHandle, generate_software_key
from keys.ocsp import OCSPResponder, RevocationStatus
from keys.tsa import InProcessTimeStamper, TimestampAuthority

BASE_URL = "http://127.0.0.1:8000"
"""The base URL written into the test certificates."""
ISSUING_CA_NAME = "issuing"
"""The URL slug of the test issuing CA."""
DEPARTMENT_NAME = "杭州市市场监督管理局"
"""The default department of test seals."""
DEPARTMENT_CODE = "9133010052CL12THX9"
"""A valid unified social credit code (the first row of ``tests/data/holders.csv``)."""

_seal_numbers = itertools.count(1)
_rsa_lock = threading.Lock()
_rsa_keys: dict[KeyAlgorithm, SoftwareKeyHandle] = {}


def _seal_key(algorithm: KeyAlgorithm, label: str) -> SoftwareKeyHandle:
    """A seal key: EC keys are fresh, RSA keys are generated once per size and reused (slow)."""
    if not algorithm.is_rsa:
        return generate_software_key(label, algorithm)
    with _rsa_lock:
        if algorithm not in _rsa_keys:
            _rsa_keys[algorithm] = generate_software_key(f"test-{algorithm.value}", algorithm)
        return _rsa_keys[algorithm]


@dataclass(frozen=True)
class PKIFiles:
    """PEM files of the test PKI written by :meth:`TestPKI.write_pems`."""

    root: Path
    """The root CA certificate (``-CAfile``)."""
    issuing: Path
    """The issuing CA certificate."""
    chain: Path
    """The issuing CA then the root (``-untrusted`` / ``-certfile``)."""
    tsa: Path
    """The TSA certificate."""
    ocsp: Path
    """The OCSP responder certificate."""


@dataclass(frozen=True, kw_only=True)
class TestPKI:
    """The shared test PKI. Build it with :func:`build_test_pki`."""

    __test__ = False  # not a pytest test class, despite its name

    root: Authority
    """The root CA."""
    issuing: Authority
    """The issuing CA (slug ``issuing``), which issues seals, the TSA and the OCSP responder."""
    tsa: Authority
    """The timestamp authority's identity."""
    ocsp: Authority
    """The delegated OCSP responder's identity."""
    urls: PKIURLs
    """The URLs written into the certificates."""
    now: datetime.datetime
    """When the PKI was built."""

    @property
    def ca_name(self) -> str:
        """The URL slug of the issuing CA."""
        return ISSUING_CA_NAME

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The chain above a seal certificate: the issuing CA, then the root."""
        return (self.issuing.certificate, self.root.certificate)

    def make_seal(
        self,
        algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
        *,
        department_name: str = DEPARTMENT_NAME,
        department_code: str = DEPARTMENT_CODE,
        seal_kind: str = "licence",
        seal_name: str = "证照专用章",
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> tuple[KeyHandle, x509.Certificate]:
        """A seal key and its certificate from the issuing CA (valid for two years by default)."""
        label = f"test-seal-{next(_seal_numbers)}"
        handle = _seal_key(algorithm, label)
        start = not_before or self.now
        end = not_after or min(
            start + datetime.timedelta(days=730), self.issuing.certificate.not_valid_after_utc
        )
        subject = SealSubject(
            department_name=department_name,
            department_code=department_code,
            seal_kind=seal_kind,
            seal_name=seal_name,
        )
        cert = issue_seal_certificate(
            self.issuing,
            handle.public_key(),
            subject=subject,
            ca_name=ISSUING_CA_NAME,
            urls=self.urls,
            not_before=start,
            not_after=end,
        )
        return handle, cert

    def timestamp_authority(self) -> TimestampAuthority:
        """An RFC 3161 authority signing with the test TSA identity."""
        return TimestampAuthority(authority=self.tsa)

    def timestamper(self) -> InProcessTimeStamper:
        """A pyHanko ``TimeStamper`` that asks the test TSA directly, without HTTP."""
        return InProcessTimeStamper(self.timestamp_authority())

    def ocsp_responder(self, statuses: dict[int, RevocationStatus] | None = None) -> OCSPResponder:
        """An OCSP responder for the issuing CA: ``statuses`` by serial, ``good`` otherwise."""
        known = dict(statuses or {})
        return OCSPResponder(
            responder=self.ocsp,
            issuers=[self.issuing.certificate],
            lookup=lambda _issuer, serial: known.get(serial, RevocationStatus("good")),
        )

    def write_pems(self, directory: Path) -> PKIFiles:
        """Write the PKI's certificates as PEM files into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        files = PKIFiles(
            root=directory / "root.pem",
            issuing=directory / "issuing.pem",
            chain=directory / "chain.pem",
            tsa=directory / "tsa.pem",
            ocsp=directory / "ocsp.pem",
        )
        files.root.write_bytes(pem(self.root.certificate))
        files.issuing.write_bytes(pem(self.issuing.certificate))
        files.chain.write_bytes(b"".join(pem(c) for c in self.chain))
        files.tsa.write_bytes(pem(self.tsa.certificate))
        files.ocsp.write_bytes(pem(self.ocsp.certificate))
        return files


def pem(cert: x509.Certificate) -> bytes:
    """The PEM encoding of ``cert``."""
    return cert.public_bytes(Encoding.PEM)


@functools.cache
def build_test_pki() -> TestPKI:
    """The test PKI, built on first call and then shared (it takes a few milliseconds)."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(days=1)
    return _pki(now)


def build_look_alike_pki(genuine: TestPKI) -> TestPKI:
    """A new PKI with the same names as ``genuine`` and keys of its own (an impostor's)."""
    return _pki(genuine.now)


def _pki(now: datetime.datetime) -> TestPKI:
    pki = create_in_memory_hierarchy(
        name="Test", base_url=BASE_URL, ca_name=ISSUING_CA_NAME, now=now
    )
    return TestPKI(
        root=pki.root, issuing=pki.issuing, tsa=pki.tsa, ocsp=pki.ocsp, urls=pki.urls, now=now
    )
