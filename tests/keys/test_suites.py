"""Algorithm suites: one per seal key algorithm, with names and OIDs that agree."""

from __future__ import annotations

import pytest
from asn1crypto import algos
from pyhanko.sign.general import get_cms_hash_algo_for_mechanism

from econtract.seals import SEAL_ALGORITHMS
from keys.errors import KeyStoreError
from keys.handles import KeyAlgorithm
from keys.oids import SM2_WITH_SM3
from keys.suites import (
    FINGERPRINT_DIGEST,
    SUITES,
    AlgorithmSuite,
    signed_bytes_digest,
    suite_for,
)

# key algorithm: (digest, digest OID, signature mechanism, signature OID), from RFC 5754
# (SHA-2 identifiers), RFC 4055 (sha256WithRSAEncryption) and RFC 5758 (ecdsa-with-SHA256).
EXPECTED = {
    KeyAlgorithm.RSA_2048: ("sha256", "2.16.840.1.101.3.4.2.1", "1.2.840.113549.1.1.11"),
    KeyAlgorithm.RSA_3072: ("sha256", "2.16.840.1.101.3.4.2.1", "1.2.840.113549.1.1.11"),
    KeyAlgorithm.EC_P256: ("sha256", "2.16.840.1.101.3.4.2.1", "1.2.840.10045.4.3.2"),
}


def test_every_seal_algorithm_has_exactly_one_suite() -> None:
    for algorithm in SEAL_ALGORITHMS:
        assert [s for s in SUITES if s.key_algorithm == algorithm] == [suite_for(algorithm)]
    assert sorted(s.key_algorithm for s in SUITES) == sorted(a.value for a in SEAL_ALGORITHMS)


@pytest.mark.parametrize("algorithm", list(EXPECTED), ids=lambda a: a.value)
def test_a_suite_names_the_standard_oids(algorithm: KeyAlgorithm) -> None:
    digest, digest_oid, signature_oid = EXPECTED[algorithm]
    suite = suite_for(algorithm)
    assert (suite.digest, suite.digest_oid, suite.signature_oid) == EXPECTED[algorithm]
    # The CMS identifiers the signer writes carry the same OIDs.
    assert suite.digest_algorithm["algorithm"].dotted == digest_oid
    assert suite.signature_algorithm["algorithm"].dotted == signature_oid
    assert suite.new_hash().name == digest


def test_the_seal_row_spelling_finds_the_same_suite() -> None:
    assert suite_for("ecdsa-p256") is suite_for(KeyAlgorithm.EC_P256)


def test_a_key_algorithm_no_seal_uses_has_no_suite() -> None:
    with pytest.raises(KeyStoreError, match="No seal algorithm suite for key algorithm ecdsa-p384"):
        suite_for(KeyAlgorithm.EC_P384)


def test_a_suite_whose_digest_name_and_oid_disagree_is_refused() -> None:
    with pytest.raises(ValueError, match="does not have the OID"):
        AlgorithmSuite(
            key_algorithm="rsa-2048",
            digest="sha384",
            digest_oid="2.16.840.1.101.3.4.2.1",
            signature_mechanism="sha256_rsa",
            signature_oid="1.2.840.113549.1.1.11",
        )


def test_a_suite_whose_signature_name_and_oid_disagree_is_refused() -> None:
    with pytest.raises(ValueError, match="does not have the OID"):
        AlgorithmSuite(
            key_algorithm="ecdsa-p256",
            digest="sha256",
            digest_oid="2.16.840.1.101.3.4.2.1",
            signature_mechanism="sha256_rsa",
            signature_oid="1.2.840.10045.4.3.2",
        )


def test_signed_bytes_are_known_by_the_digest_a_suite_signs_with() -> None:
    assert signed_bytes_digest("SHA256") == "sha256"


def test_signed_bytes_of_a_digest_no_suite_uses_get_the_fingerprint_digest() -> None:
    assert signed_bytes_digest("sha512") == FINGERPRINT_DIGEST == "sha256"


def test_the_sm2_identifier_tells_pyhanko_its_mechanism_and_digest() -> None:
    mechanism = suite_for(KeyAlgorithm.SM2).signature_algorithm
    # pyHanko asks a signer's mechanism which digest it fixes (its default digest, its check of
    # the digest asked for); asn1crypto alone has no answer for SM2-with-SM3.
    assert get_cms_hash_algo_for_mechanism(mechanism) == "sm3"
    assert mechanism.signature_algo == "sm2"
    # The encoding is asn1crypto's own: read back, it is SM2-with-SM3 and nothing else.
    assert mechanism.dump() == algos.SignedDigestAlgorithm({"algorithm": "sm2_sm3"}).dump()
    assert algos.SignedDigestAlgorithm.load(mechanism.dump())["algorithm"].dotted == SM2_WITH_SM3


def test_the_other_identifiers_are_asn1cryptos() -> None:
    for suite in SUITES:
        if suite.key_algorithm != KeyAlgorithm.SM2:
            assert type(suite.signature_algorithm) is algos.SignedDigestAlgorithm
            assert get_cms_hash_algo_for_mechanism(suite.signature_algorithm) == suite.digest
