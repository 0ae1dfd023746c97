"""Algorithm suites: which digest and signature mechanism a seal's key signs with.

A suite binds a seal's key algorithm (the ``algorithm`` of its registry row) to everything
a seal made with it names: the digest of the signed bytes and the CMS algorithm
identifiers. The sealer, the signer and the registry's signed-bytes digest take them from
here, so a new algorithm family (SM2 with SM3) is one more entry in :data:`SUITES`.

This module is on the public side of ``keys``: it names algorithms and holds no key, so it
knows key algorithms by their registry values (``rsa-2048``...), which
:class:`keys.handles.KeyAlgorithm` also uses, rather than importing the handles.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from asn1crypto import algos

from keys import oids
from keys.errors import KeyStoreError

__all__ = [
    "FINGERPRINT_DIGEST",
    "SUITES",
    "AlgorithmSuite",
    "signed_bytes_digest",
    "suite_for",
]


@dataclass(frozen=True, kw_only=True)
class AlgorithmSuite:
    """One key algorithm with the digest and signature mechanism its seals use."""

    key_algorithm: str
    """The key algorithm, as a seal's registry row and ``KeyAlgorithm`` spell it."""
    digest: str
    """The digest's name for hashlib, asn1crypto and pyHanko (``sha256``)."""
    digest_oid: str
    """The digest's object identifier (dotted)."""
    signature_mechanism: str
    """asn1crypto's name of the CMS signature algorithm (``sha256_rsa``, ``sha256_ecdsa``)."""
    signature_oid: str
    """The signature algorithm's object identifier (dotted)."""

    def __post_init__(self) -> None:
        # A suite whose names and OIDs disagree would write one algorithm and claim another.
        if algos.DigestAlgorithmId(self.digest).dotted != self.digest_oid:
            raise ValueError(f"Digest {self.digest} does not have the OID {self.digest_oid}.")
        mechanism = algos.SignedDigestAlgorithmId(self.signature_mechanism)
        if mechanism.dotted != self.signature_oid:
            raise ValueError(
                f"Signature mechanism {self.signature_mechanism} does not have the OID "
                f"{self.signature_oid}."
            )

    @property
    def digest_algorithm(self) -> algos.DigestAlgorithm:
        """The CMS DigestAlgorithmIdentifier."""
        return algos.DigestAlgorithm({"algorithm": self.digest})

    @property
    def signature_algorithm(self) -> algos.SignedDigestAlgorithm:
        """The CMS SignatureAlgorithmIdentifier of a SignerInfo; for SM2-with-SM3 it also
        tells pyHanko the mechanism and its digest (:class:`_NationalSignedDigestAlgorithm`)."""
        if self.signature_mechanism == _SM2_WITH_SM3:
            return _NationalSignedDigestAlgorithm({"algorithm": self.signature_mechanism})
        return algos.SignedDigestAlgorithm({"algorithm": self.signature_mechanism})

    def new_hash(self) -> hashlib._Hash:
        """A fresh hash object of the suite's digest (for digests of signed bytes)."""
        return hashlib.new(self.digest)


_SM2_WITH_SM3 = "sm2_sm3"
"""asn1crypto's name of SM2-with-SM3 (registered by :mod:`keys.oids`)."""


class _NationalSignedDigestAlgorithm(algos.SignedDigestAlgorithm):  # type: ignore[misc]  # asn1crypto is untyped
    """asn1crypto's SignatureAlgorithmIdentifier, answering for SM2-with-SM3 too.

    asn1crypto's ``signature_algo`` and ``hash_algo`` know no national algorithm and raise a
    ``ValueError`` for ``sm2_sm3``, whose message it dedents and formats with regular
    expressions. pyHanko asks the signer's mechanism twice per seal (the signer's default
    digest, the PDF extensions a mechanism needs), catches the error and goes on without an
    answer: that was the only Python work an SM2 seal did that an RSA seal does not (some
    10 us of about 4 ms). Answered, pyHanko also learns that the mechanism fixes SM3 and
    refuses another digest on its own signing path, as it does for the other suites. The
    encoding is asn1crypto's, unchanged. Only the SM2 suite's identifier is made of this class,
    so the other suites' seals do not pay its check.
    """

    @property
    def signature_algo(self) -> str:
        """``sm2`` for SM2-with-SM3, else asn1crypto's name of the mechanism."""
        if self["algorithm"].native == _SM2_WITH_SM3:
            return "sm2"
        return str(super().signature_algo)

    @property
    def hash_algo(self) -> str:
        """``sm3`` for SM2-with-SM3, else asn1crypto's name of the mechanism's digest."""
        if self["algorithm"].native == _SM2_WITH_SM3:
            return "sm3"
        return str(super().hash_algo)


_SHA256 = "2.16.840.1.101.3.4.2.1"
_SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"

SUITES: tuple[AlgorithmSuite, ...] = (
    AlgorithmSuite(
        key_algorithm="rsa-2048",
        digest="sha256",
        digest_oid=_SHA256,
        signature_mechanism="sha256_rsa",
        signature_oid=_SHA256_WITH_RSA,
    ),
    AlgorithmSuite(
        key_algorithm="rsa-3072",
        digest="sha256",
        digest_oid=_SHA256,
        signature_mechanism="sha256_rsa",
        signature_oid=_SHA256_WITH_RSA,
    ),
    AlgorithmSuite(
        key_algorithm="ecdsa-p256",
        digest="sha256",
        digest_oid=_SHA256,
        signature_mechanism="sha256_ecdsa",
        signature_oid=_ECDSA_WITH_SHA256,
    ),
    # SM2 with SM3 and the default user id (keys.sm2); keys.oids registers the names.
    AlgorithmSuite(
        key_algorithm="sm2",
        digest="sm3",
        digest_oid=oids.SM3,
        signature_mechanism=_SM2_WITH_SM3,
        signature_oid=oids.SM2_WITH_SM3,
    ),
)
"""The suites a seal may use, one per key algorithm."""

_BY_KEY_ALGORITHM = {suite.key_algorithm: suite for suite in SUITES}
_SEAL_DIGESTS = frozenset(suite.digest for suite in SUITES)

FINGERPRINT_DIGEST = "sha256"
"""The registry's fingerprint digest: of whole files and certificates, and of the signed
bytes of a signature that no suite makes. It names what was stored, not how a seal signs,
so it stays SHA-256 whatever suites are added."""


def signed_bytes_digest(md_algorithm: str) -> str:
    """The digest by which the registry knows a signature's signed bytes.

    A seal of this service is recorded with its suite's digest, which is the digest its CMS
    names (``md_algorithm``); a signature whose digest no suite uses was not made here, and
    is digested with :data:`FINGERPRINT_DIGEST` so that its report keeps the same shape.
    """
    digest = md_algorithm.lower()
    return digest if digest in _SEAL_DIGESTS else FINGERPRINT_DIGEST


def suite_for(key_algorithm: str) -> AlgorithmSuite:
    """The suite of a key algorithm (a ``KeyAlgorithm`` or a seal row's ``algorithm``).

    Raises :class:`KeyStoreError` for an algorithm no seal may use.
    """
    try:
        return _BY_KEY_ALGORITHM[str(key_algorithm)]
    except KeyError:
        allowed = ", ".join(_BY_KEY_ALGORITHM)
        raise KeyStoreError(
            f"No seal algorithm suite for key algorithm {key_algorithm!s}; one of {allowed}."
        ) from None
