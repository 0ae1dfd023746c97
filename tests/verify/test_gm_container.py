"""SM2 seals in the GM/T 0010 (GB/T 35275) container: the CMS content types
1.2.156.10197.6.1.4.2.2 (signedData) and 1.2.156.10197.6.1.4.2.1 (data) instead of RFC 5652's,
as some Chinese signers write them. The verifier judges them exactly as the RFC 5652 form:
integrity, trust to the SM2 root, revocation, timestamps and the difference analysis; it still
requires the signed content-type attribute to equal the eContentType, and refuses any other
content type by name.

The service never writes this form; :class:`GMContainerSigner` here does, for the tests only:
the same SM2 seal, SM3 digest and signed attributes as the service's seal, in asn1crypto's
structures with the GM/T 0010 content types.
"""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, core
from pyhanko.sign.attributes import TSTProvider
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.timestamps.api import TimeStamper

from keys.crl import RevokedEntry
from keys.signer import KeySigner
from signing.options import Certification, SealLevel
from signing.sealer import SealIdentity
from tests.signing.sm2 import embedded_seals, openssl_verifies, sm3
from tests.verify import forge
from tests.verify.forge import Sealed
from tests.verify.sm2pki import SM2TestPKI
from verify._cms_containers import GM_DATA, GM_SIGNED_DATA
from verify.pdf import verify_pdf
from verify.report import Indication, Report, SignatureReport, Verdict

_RFC_DATA = "1.2.840.113549.1.7.1"
_GM_ENVELOPED_DATA = "1.2.156.10197.6.1.4.2.3"
_GM_ENCRYPTED_DATA = "1.2.156.10197.6.1.4.2.5"
_VERIFIED = "Signature Verified Successfully"
_FAILED = "Signature Verification Failure"
_LEVELS = (SealLevel.B_B, SealLevel.B_LT, SealLevel.B_LTA)


class GMContainerSigner(KeySigner):
    """An SM2 seal's signer that writes GM/T 0010's container: ContentInfo ``container``
    (signedData by default), eContentType ``content``, content-type attribute ``attribute``
    (both data by default). The attributes, digest, signature and timestamp are the
    service's; only the content types differ. A ``spoiled`` signer changes the last byte of
    the signature value it writes."""

    def __init__(
        self,
        seal: SealIdentity,
        *,
        container: str = GM_SIGNED_DATA,
        content: str = GM_DATA,
        attribute: str = GM_DATA,
        spoiled: bool = False,
    ) -> None:
        base = seal.signer
        super().__init__(
            handle=base.handle,
            certificate=base.signing_cert,
            chain=list(base.cert_registry),
            suite=base.suite,
        )
        self._container = container
        self._content = content
        self._attribute = attribute
        self._spoiled = spoiled

    async def async_sign(  # pyHanko's signature
        self,
        data_digest: bytes,
        digest_algorithm: str,
        dry_run: bool = False,
        use_pades: bool = False,
        timestamper: TimeStamper | None = None,
        signed_attr_settings: PdfCMSSignedAttributes | None = None,
        is_pdf_sig: bool = True,
        encap_content_info: Any = None,
    ) -> cms.ContentInfo:
        """The CMS of ``data_digest`` in the GM/T 0010 form."""
        cert = self.signing_cert
        assert cert is not None
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                            {"issuer": cert.issuer, "serial_number": cert.serial_number}
                        )
                    }
                ),
                "digest_algorithm": {"algorithm": "sm3"},
                "signed_attrs": [
                    {"type": "content_type", "values": [cms.ContentType(self._attribute)]},
                    {"type": "message_digest", "values": [data_digest]},
                    {
                        "type": "signing_certificate_v2",
                        "values": [as_signing_certificate_v2(cert)],
                    },
                ],
                "signature_algorithm": {"algorithm": "sm2_sm3"},
                "signature": b"",
            }
        )
        # SM2 over DER(signed attributes) tagged as a SET OF, as RFC 5652 5.4 says.
        to_sign = b"\x31" + signer_info["signed_attrs"].dump()[1:]
        signature = await self.async_sign_raw(to_sign, digest_algorithm, dry_run)
        if self._spoiled:
            signature = signature[:-1] + bytes((signature[-1] ^ 0x01,))
        signer_info["signature"] = signature
        if timestamper is not None:
            token = await TSTProvider(
                digest_algorithm=digest_algorithm, data_to_ts=signature, timestamper=timestamper
            ).build_attr_value(dry_run=dry_run)
            signer_info["unsigned_attrs"] = [
                {"type": "signature_time_stamp_token", "values": [token]}
            ]
        signed_data = cms.SignedData(
            {
                "version": "v1",
                "digest_algorithms": [{"algorithm": "sm3"}],
                "encap_content_info": {"content_type": self._content},
                "certificates": [
                    cms.CertificateChoices(name="certificate", value=c)
                    for c in (cert, *self.cert_registry)
                ],
                "signer_infos": [signer_info],
            }
        )
        # Built by hand: asn1crypto has no structure for an unknown content type's content.
        outer = core.ObjectIdentifier(self._container).dump()
        explicit = core.Any.load(signed_data.dump()).retag({"explicit": 0})
        return cms.ContentInfo.load(_sequence(outer + explicit.dump()))


def _sequence(content: bytes) -> bytes:
    """DER SEQUENCE of ``content``."""
    size = len(content)
    if size < 0x80:
        return bytes((0x30, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x30, 0x80 | len(length))) + length + content


def _gm_seal(sm2_pki: SM2TestPKI, **choices: Any) -> SealIdentity:
    """A new SM2 seal of the PKI whose signer writes the GM/T 0010 container."""
    seal = sm2_pki.identity()
    return dataclasses.replace(seal, signer=GMContainerSigner(seal, **choices))


def _sealed(
    sm2_pki: SM2TestPKI,
    level: SealLevel = SealLevel.B_B,
    certification: Certification = Certification.APPROVAL,
    **choices: Any,
) -> Sealed:
    return sm2_pki.seal(
        level=level, certification=certification, seal_identity=_gm_seal(sm2_pki, **choices)
    )


def _only_seal(report: Report) -> SignatureReport:
    [seal] = [s for s in report.signatures if s.kind == "seal"]
    return seal


def _judged(report: Report) -> tuple[object, ...]:
    """What a verification decided about a document and its seal (not who or when)."""
    seal = _only_seal(report)
    return (
        report.verdict,
        seal.indication,
        seal.sub_indication,
        seal.intact,
        seal.valid,
        seal.trusted,
        seal.coverage,
        seal.modification_level,
        seal.certification_level,
        seal.docmdp_ok,
        seal.pades_level,
        seal.revocation.state,
        seal.timestamp is not None and seal.timestamp.trusted,
        seal.algorithms,
        tuple(s.kind for s in report.signatures),
        tuple(s.indication for s in report.signatures),
    )


def test_the_test_signer_writes_the_gm_container(sm2_pki: SM2TestPKI) -> None:
    sealed = _sealed(sm2_pki)
    [seal] = embedded_seals(sealed.pdf)
    assert seal.content["content_type"].dotted == GM_SIGNED_DATA
    assert seal.signed_data["encap_content_info"]["content_type"].dotted == GM_DATA
    [content_type] = [
        a for a in seal.signer_info["signed_attrs"] if a["type"].native == "content_type"
    ]
    assert content_type["values"][0].dotted == GM_DATA
    assert seal.signer_info["digest_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"
    assert seal.signer_info["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert seal.message_digest == sm3(seal.covered_bytes(sealed.pdf))


def test_openssl_verifies_the_gm_container_signature(sm2_pki: SM2TestPKI, tmp_path: Path) -> None:
    [seal] = embedded_seals(_sealed(sm2_pki).pdf)
    assert _VERIFIED in openssl_verifies(tmp_path, seal)
    changed = bytearray(seal.signed_attrs_der())
    changed[-1] ^= 0x01
    assert _FAILED in openssl_verifies(tmp_path, seal, bytes(changed))


@pytest.mark.parametrize("level", _LEVELS, ids=lambda level: level.value)
def test_a_gm_container_seal_is_valid_at_every_level(sm2_pki: SM2TestPKI, level: SealLevel) -> None:
    sealed = _sealed(sm2_pki, level, Certification.NO_CHANGES)
    report = verify_pdf(sealed.pdf, policy=sm2_pki.policy())
    assert report.verdict is Verdict.VALID, report.reasons
    seal = _only_seal(report)
    assert seal.indication is Indication.TOTAL_PASSED
    assert (seal.intact, seal.valid, seal.trusted) == (True, True, True)
    assert seal.trust_anchor is not None
    assert "SM2" in seal.trust_anchor.subject
    assert seal.revocation.state == "good"
    assert seal.pades_level == level.value
    assert seal.signed_digest == sealed.result.signed_digest
    if level is not SealLevel.B_B:
        assert seal.timestamp is not None
        assert seal.timestamp.trusted


@pytest.mark.parametrize("level", _LEVELS, ids=lambda level: level.value)
def test_a_gm_container_seal_is_judged_as_the_rfc_5652_form(
    sm2_pki: SM2TestPKI, level: SealLevel
) -> None:
    rfc = sm2_pki.seal(level=level, certification=Certification.NO_CHANGES)
    gm = _sealed(sm2_pki, level, Certification.NO_CHANGES)
    policy = sm2_pki.policy()
    assert _judged(verify_pdf(gm.pdf, policy=policy)) == _judged(verify_pdf(rfc.pdf, policy=policy))


def test_a_tampered_gm_container_seal_is_invalid(sm2_pki: SM2TestPKI) -> None:
    sealed = _sealed(sm2_pki, SealLevel.B_LT)
    report = verify_pdf(forge.flip_signed_byte(sealed.pdf), policy=sm2_pki.policy())
    assert report.verdict is Verdict.INVALID
    seal = _only_seal(report)
    assert not seal.intact
    assert seal.sub_indication == "HASH_FAILURE"


def test_a_gm_container_seal_whose_signature_does_not_verify_is_invalid(
    sm2_pki: SM2TestPKI,
) -> None:
    sealed = _sealed(sm2_pki, spoiled=True)
    report = verify_pdf(sealed.pdf, policy=sm2_pki.policy())
    assert report.verdict is Verdict.INVALID
    seal = _only_seal(report)
    assert seal.intact
    assert seal.sub_indication == "SIG_CRYPTO_FAILURE"


def test_a_gm_container_seal_changed_after_sealing_is_modified(sm2_pki: SM2TestPKI) -> None:
    sealed = _sealed(sm2_pki, SealLevel.B_LT)
    changed = forge.update(sealed.pdf, forge.add_page_content(b"BT /F1 30 Tf 100 400 Td (X) Tj ET"))
    assert verify_pdf(changed, policy=sm2_pki.policy()).verdict is Verdict.MODIFIED


def test_a_revoked_gm_container_seal_is_revoked(sm2_pki: SM2TestPKI) -> None:
    sealed = _sealed(sm2_pki, SealLevel.B_B)
    revoked_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    revoked = (RevokedEntry(sealed.seal.certificate.serial_number, revoked_at),)
    report = verify_pdf(sealed.pdf, policy=sm2_pki.policy(revoked))
    assert report.verdict is Verdict.REVOKED
    assert _only_seal(report).revocation.state == "revoked"


def test_a_gm_container_seal_of_an_untrusted_hierarchy_is_not_valid(
    sm2_pki: SM2TestPKI,
) -> None:
    impostor = sm2_pki.look_alike()
    sealed = _sealed(impostor, SealLevel.B_B)
    report = verify_pdf(sealed.pdf, policy=sm2_pki.policy())
    assert report.verdict is not Verdict.VALID
    assert not _only_seal(report).trusted


@pytest.mark.parametrize(
    ("content", "attribute"),
    [(GM_DATA, _RFC_DATA), (_RFC_DATA, GM_DATA)],
    ids=["gm-content-rfc-attribute", "rfc-content-gm-attribute"],
)
def test_a_content_type_attribute_that_differs_from_the_content_type_is_invalid(
    sm2_pki: SM2TestPKI, content: str, attribute: str
) -> None:
    sealed = _sealed(sm2_pki, content=content, attribute=attribute)
    report = verify_pdf(sealed.pdf, policy=sm2_pki.policy())
    assert report.verdict is Verdict.INVALID
    seal = _only_seal(report)
    assert seal.indication is Indication.TOTAL_FAILED
    assert any("did not match" in problem for problem in seal.problems), seal.problems


def test_the_rfc_5652_signed_data_may_sign_gm_data(sm2_pki: SM2TestPKI) -> None:
    # Only the signed content-type attribute speaks for the content: the container's own
    # type is signed by no one.
    sealed = _sealed(sm2_pki, container="1.2.840.113549.1.7.2")
    report = verify_pdf(sealed.pdf, policy=sm2_pki.policy())
    assert report.verdict is Verdict.VALID, report.reasons


def test_a_gm_enveloped_data_container_is_refused_by_name(sm2_pki: SM2TestPKI) -> None:
    sealed = _sealed(sm2_pki, container=_GM_ENVELOPED_DATA)
    report = verify_pdf(sealed.pdf, policy=sm2_pki.policy())
    assert report.verdict is Verdict.INVALID
    seal = _only_seal(report)
    assert seal.sub_indication == "FORMAT_FAILURE"
    assert seal.problems == (
        f"The signature's CMS content type is {_GM_ENVELOPED_DATA} (GM/T 0010 envelopedData), "
        "not signed data (RFC 5652 id-signedData 1.2.840.113549.1.7.2 or GM/T 0010 signedData "
        f"{GM_SIGNED_DATA}).",
    )


def test_an_unknown_content_type_is_refused_by_name(sm2_pki: SM2TestPKI) -> None:
    sealed = _sealed(sm2_pki, content=_GM_ENCRYPTED_DATA, attribute=_GM_ENCRYPTED_DATA)
    report = verify_pdf(sealed.pdf, policy=sm2_pki.policy())
    assert report.verdict is Verdict.INVALID
    [problem] = _only_seal(report).problems
    assert problem.startswith(
        f"The signature signs content of type {_GM_ENCRYPTED_DATA} (GM/T 0010 encryptedData), "
        "not data"
    )


def test_an_unknown_container_oid_is_refused_by_name(sm2_pki: SM2TestPKI) -> None:
    sealed = _sealed(sm2_pki, container="1.2.3.4")
    report = verify_pdf(sealed.pdf, policy=sm2_pki.policy())
    assert report.verdict is Verdict.INVALID
    [problem] = _only_seal(report).problems
    assert problem.startswith("The signature's CMS content type is 1.2.3.4, not signed data")
