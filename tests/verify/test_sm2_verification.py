"""SM2 seals verified to the same depth as the others: the SM3 digest and SM2 signature, the
chain to the service's SM2 root, revocation from the SM2 CRLs, the SM2 timestamps and the
difference analysis; and the core attacks on an SM2-sealed licence.

The seals are made by the service (its SM2 hierarchy, SM2 timestamp authority and SM2 CRLs);
the foreign SM2 hierarchy of :mod:`tests.signing.sm2` plays the untrusted CA.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from asn1crypto import algos, cms, keys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from pyhanko_certvalidator.errors import AlgorithmNotSupported
from pyhanko_certvalidator.sig_validate import (
    DEFAULT_VALIDATION_CONTEXT,
    SignatureValidationContext,
)

from econtract import audit, db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import run
from econtract.models import Department, Seal
from econtract.pki import SM2_ISSUING, SM2_ROOT
from econtract.sealing import seal_identity as service_identity
from econtract.sealing import sealing_context
from econtract.seals import revoke_seal
from econtract.services import Services
from econtract.verification import service_policy
from keys import oids
from keys.ca import SealSubject
from keys.signer import KeySigner
from keys.sm2 import generate_sm2_key
from keys.sm2ca import SM2Authority, issue_sm2_seal_certificate
from signing.appearance import SealAppearance
from signing.options import Certification, SealLevel, SealOptions
from signing.sealer import SealIdentity, SealingContext, seal_pdf_bytes
from tests.econtract.test_sm2_sealing import sm2_seal
from tests.licences import issue_example
from tests.signing.sealing import make_pdf
from tests.signing.sm2 import embedded_seals, sm2_identity
from tests.testpki import DEPARTMENT_CODE, DEPARTMENT_NAME
from tests.verify import forge
from verify._sm2 import NationalSignatureValidator
from verify.pdf import verify_pdf
from verify.policy import VerificationPolicy
from verify.report import Indication, Report, SignatureReport, Verdict

_LONG_TERM = (SealLevel.B_LT, SealLevel.B_LTA)
_DAY = datetime.timedelta(days=1)
_MINUTES = datetime.timedelta(minutes=5)
_SUBJECT = SealSubject(
    department_name=DEPARTMENT_NAME,
    department_code=DEPARTMENT_CODE,
    seal_kind="licence",
    seal_name="证照专用章",
)


def _sealed(services: Services, level: SealLevel, seal: Seal | None = None) -> bytes:
    """A one-page PDF certified by an SM2 licence seal of the service at ``level``, not
    registered (the seal's own word only)."""
    seal = seal or sm2_seal(services)
    with services.sessions() as session:
        department = session.get(Department, seal.department_id)
        assert department is not None
        identity = service_identity(services, seal, department)
    pdf, _ = seal_pdf_bytes(
        make_pdf(1),
        identity=identity,
        options=SealOptions(level=level, certification=Certification.NO_CHANGES),
        context=sealing_context(services, identity.certificate, long_term=level in _LONG_TERM),
    )
    return pdf


def _sm2_root(services: Services) -> VerificationPolicy:
    """An auditor's policy: the SM2 root alone; revocation must come from the file."""
    return VerificationPolicy(trust_roots=(services.pki.sm2_ca_certificates[SM2_ROOT],))


def _licence(services: Services) -> bytes:
    """A licence issued (and registered) with an SM2 licence seal, as stored."""
    sm2_seal(services)
    certificate = issue_example(services)
    return (services.settings.blob_dir / certificate.blob_key).read_bytes()


def _only_seal(report: Report) -> SignatureReport:
    [seal] = [s for s in report.signatures if s.kind == "seal"]
    return seal


@pytest.mark.parametrize("level", [SealLevel.B_B, SealLevel.B_LT, SealLevel.B_LTA])
def test_a_genuine_sm2_seal_is_valid_at_every_level(
    initialised: Services, level: SealLevel
) -> None:
    report = verify_pdf(
        _sealed(initialised, level), policy=service_policy(initialised, registry=False)
    )
    assert report.verdict is Verdict.VALID, report.reasons
    seal = report.signatures[0]
    assert seal.kind == "seal"
    assert seal.indication is Indication.TOTAL_PASSED
    assert seal.intact
    assert seal.valid
    assert seal.trusted
    assert seal.trust_anchor is not None
    assert "SM2" in seal.trust_anchor.subject
    assert seal.signer is not None
    assert (seal.signer.department_code, seal.signer.seal_kind) == (DEMO_DEPARTMENT_CODE, "licence")
    assert seal.algorithms is not None
    assert (seal.algorithms.digest, seal.algorithms.signature) == ("sm3", "sm2_sm3")
    assert seal.revocation.state == "good"
    # The validation data and document timestamp come in later revisions, as allowed.
    assert seal.modification_level == ("NONE" if level is SealLevel.B_B else "LTA_UPDATES")
    assert seal.pades_level == level.value
    if level is not SealLevel.B_B:
        assert seal.timestamp is not None
        assert seal.timestamp.trusted
        assert "SM2" in seal.timestamp.authority
    if level is SealLevel.B_LTA:
        [document_timestamp] = report.signatures[1:]
        assert document_timestamp.kind == "document-timestamp"
        assert document_timestamp.indication is Indication.TOTAL_PASSED
        assert document_timestamp.algorithms is not None
        assert document_timestamp.algorithms.signature == "sm2_sm3"


@pytest.mark.parametrize("level", _LONG_TERM)
def test_a_long_term_sm2_seal_is_valid_offline_from_its_own_sm2_crls(
    initialised: Services, level: SealLevel
) -> None:
    report = verify_pdf(_sealed(initialised, level), policy=_sm2_root(initialised))
    assert report.verdict is Verdict.VALID, report.reasons
    assert report.signatures[0].revocation.state == "good"
    assert report.signatures[0].revocation.sources == ("embedded",)


def test_revocation_of_an_sm2_seal_that_cannot_be_established_is_indeterminate(
    initialised: Services,
) -> None:
    # B-B carries no CRL and the auditor brings none: the seal may be revoked, or not.
    report = verify_pdf(_sealed(initialised, SealLevel.B_B), policy=_sm2_root(initialised))
    assert report.verdict is Verdict.INDETERMINATE, report.reasons
    assert report.signatures[0].indication is Indication.INDETERMINATE
    assert report.signatures[0].sub_indication == "TRY_LATER"
    assert report.signatures[0].revocation.state == "unknown"


def test_econtract_verify_with_the_sm2_root_says_valid(
    initialised: Services, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sealed.pdf"
    path.write_bytes(_sealed(initialised, SealLevel.B_LTA))
    root = tmp_path / "sm2-root.pem"
    root.write_bytes(initialised.pki.sm2_ca_certificates[SM2_ROOT].public_bytes(Encoding.PEM))
    capsys.readouterr()
    status = run(["verify", str(path), "--trust-root", str(root), "--json"])
    out = capsys.readouterr()
    assert status == 0, out.err
    report = json.loads(out.out)
    assert report["verdict"] == "VALID"
    assert [s["indication"] for s in report["signatures"]] == ["TOTAL_PASSED"] * 2


def test_post_verify_says_an_sm2_licence_is_valid_and_its_seal_checks(
    api_client: TestClient, initialised: Services
) -> None:
    response = api_client.post(
        "/v1/verify",
        files={"file": ("licence.pdf", _licence(initialised), "application/pdf")},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["verdict"] == "VALID"
    assert report["registry"]["matched"]
    [seal] = report["signatures"]
    assert seal["indication"] == "TOTAL_PASSED"
    assert seal["pades_level"] == "B-LT"
    assert seal["algorithms"]["signature"] == "sm2_sm3"


# --- attacks on an SM2-sealed licence -------------------------------------------------------


def test_a_changed_byte_in_an_sm2_licence_is_invalid(
    api_client: TestClient, initialised: Services
) -> None:
    pdf = forge.flip_signed_byte(_licence(initialised))
    report = verify_pdf(pdf, policy=service_policy(initialised))
    assert report.verdict is Verdict.INVALID, report.reasons
    assert _only_seal(report).sub_indication == "HASH_FAILURE"
    response = api_client.post("/v1/verify", files={"file": ("l.pdf", pdf, "application/pdf")})
    assert response.json()["verdict"] == "INVALID"


def test_a_page_drawn_over_after_the_sm2_seal_is_modified(initialised: Services) -> None:
    pdf = forge.update(_licence(initialised), forge.add_page_content(b"1 1 1 rg 0 0 600 800 re f"))
    report = verify_pdf(pdf, policy=service_policy(initialised))
    assert report.verdict is Verdict.MODIFIED, report.reasons
    assert _only_seal(report).modification_level == "OTHER"


def test_an_sm2_seal_re_signed_by_another_sm2_key_is_invalid(initialised: Services) -> None:
    # The genuine certificate and signed attributes, with a signature by a key of the same
    # curve: the digest still matches, the SM2 signature does not.
    pdf = _resign(_licence(initialised))
    report = verify_pdf(pdf, policy=service_policy(initialised, registry=False))
    assert report.verdict is Verdict.INVALID, report.reasons
    seal = _only_seal(report)
    assert seal.intact
    assert not seal.valid
    assert seal.sub_indication == "SIG_CRYPTO_FAILURE"


def test_an_sm2_seal_of_an_untrusted_sm2_ca_is_invalid(initialised: Services) -> None:
    pdf, _ = seal_pdf_bytes(
        make_pdf(1),
        identity=sm2_identity(),
        options=SealOptions(level=SealLevel.B_B),
        context=SealingContext(),
    )
    report = verify_pdf(pdf, policy=service_policy(initialised, registry=False))
    assert report.verdict is Verdict.INVALID, report.reasons
    seal = report.signatures[0]
    assert seal.valid
    assert not seal.trusted
    assert seal.sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"


def test_a_revoked_sm2_seal_is_not_valid(initialised: Services) -> None:
    # Sealed at B-B, revoked since: nothing proves the seal was made before the revocation
    # (the rule for every algorithm), and the SM2 issuing CA's CRL, signed SM2, lists it.
    seal = sm2_seal(initialised)
    pdf = _sealed(initialised, SealLevel.B_B, seal)
    with db.transaction(initialised.sessions) as session:
        revoke_seal(
            session, seal_id=seal.id, reason="keyCompromise", actor=audit.Actor.operator("test")
        )
    report = verify_pdf(pdf, policy=service_policy(initialised, registry=False))
    assert report.verdict is Verdict.REVOKED, report.reasons
    assert report.reasons[0].code == "seal-revoked"
    signature = report.signatures[0]
    assert signature.sub_indication == "REVOKED_NO_POE"
    assert signature.revocation.state == "revoked"
    assert signature.revocation.reason == "key_compromise"


def _resign(pdf: bytes) -> bytes:
    """The first seal's SM2 signature replaced by another SM2 key's over the same signed
    attributes, in the same ``/Contents`` (the bytes between the two signed ranges)."""
    [genuine, *_] = embedded_seals(pdf)
    content = cms.ContentInfo.load(genuine.content.dump())
    content["content"]["signer_infos"][0]["signature"] = generate_sm2_key("forger").sign(
        genuine.signed_attrs_der()
    )
    first, first_len, second, _, _ = forge.byte_range(pdf)
    start, end = first + first_len + 1, second - 1  # inside "<" … ">"
    new_hex: bytes = content.dump().hex().encode()
    assert len(new_hex) <= end - start
    return pdf[:start] + new_hex.ljust(end - start, b"0") + pdf[end:]


def test_an_sm2_seal_certified_by_another_seal_of_the_sm2_hierarchy_is_invalid(
    initialised: Services,
) -> None:
    # A genuine SM2 seal certificate is no CA (basic constraints): a certificate it signs,
    # with a valid SM2 signature, does not chain ("intermediate certificate 2 is not a CA").
    issuing = initialised.pki.sm2_issuing
    assert issuing is not None
    first = generate_sm2_key("seal-as-ca")
    now = datetime.datetime.now(datetime.UTC)
    first_certificate = issue_sm2_seal_certificate(
        issuing, first.public_key_info(), subject=_SUBJECT, ca_name=SM2_ISSUING,
        urls=initialised.pki.urls, not_before=now - _MINUTES, not_after=now + _DAY,
    )  # fmt: skip
    pretender = SM2Authority(
        certificate=first_certificate,
        handle=first,
        chain=(issuing.certificate, *issuing.chain),
    )
    second = generate_sm2_key("under-a-seal")
    certificate = issue_sm2_seal_certificate(
        pretender, second.public_key_info(), subject=_SUBJECT, ca_name=SM2_ISSUING,
        urls=initialised.pki.urls, not_before=now - _MINUTES, not_after=now + _DAY / 2,
    )  # fmt: skip
    chain = (first_certificate, issuing.certificate, *issuing.chain)
    pdf, _ = seal_pdf_bytes(
        make_pdf(1),
        identity=SealIdentity(
            signer=KeySigner.for_handle(second, certificate, chain),
            certificate=certificate,
            chain=chain,
            appearance=SealAppearance(
                department_name=DEPARTMENT_NAME, seal_name="证照专用章", code="X"
            ),
        ),
        options=SealOptions(level=SealLevel.B_B),
        context=SealingContext(),
    )
    report = verify_pdf(pdf, policy=service_policy(initialised, registry=False))
    assert report.verdict is Verdict.INVALID, report.reasons
    seal = report.signatures[0]
    assert seal.valid
    assert not seal.trusted
    assert seal.sub_indication == "CERTIFICATE_CHAIN_GENERAL_FAILURE"


# --- the SM2 signature check itself ---------------------------------------------------------

_SM2_WITH_SM3 = algos.SignedDigestAlgorithm({"algorithm": oids.SM2_WITH_SM3})


def _check(signature: bytes, data: bytes, key: bytes, algorithm: algos.SignedDigestAlgorithm,
           context: SignatureValidationContext = DEFAULT_VALIDATION_CONTEXT) -> None:  # fmt: skip
    NationalSignatureValidator().validate_signature(
        signature, data, keys.PublicKeyInfo.load(key), algorithm, context
    )


def test_an_sm2_signature_verifies_and_a_changed_message_does_not() -> None:
    key = generate_sm2_key("k")
    signature = key.sign(b"signed attributes")
    _check(signature, b"signed attributes", key.public_key_der(), _SM2_WITH_SM3)
    with pytest.raises(InvalidSignature):
        _check(signature, b"signed attributes!", key.public_key_der(), _SM2_WITH_SM3)
    other = generate_sm2_key("other")
    with pytest.raises(InvalidSignature):
        _check(signature, b"signed attributes", other.public_key_der(), _SM2_WITH_SM3)


def test_an_sm2_key_signs_sm2_with_sm3_only() -> None:
    key = generate_sm2_key("k")
    signature = key.sign(b"data")
    ecdsa = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
    with pytest.raises(AlgorithmNotSupported):
        _check(signature, b"data", key.public_key_der(), ecdsa)
    # Z_A comes before the message: a digest alone cannot be checked.
    prehashed = SignatureValidationContext(contextual_md_algorithm="sm3", prehashed=True)
    with pytest.raises(AlgorithmNotSupported):
        _check(signature, b"data", key.public_key_der(), _SM2_WITH_SM3, prehashed)


def test_a_p256_key_cannot_pass_for_sm2() -> None:
    # ECDSA over SM3 with a P-256 key is not SM2: named SM2-with-SM3, it is refused.
    p256 = ec.generate_private_key(ec.SECP256R1())
    signature = p256.sign(b"data", ec.ECDSA(hashes.SM3()))
    spki = p256.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(InvalidSignature):
        _check(signature, b"data", spki, _SM2_WITH_SM3)
