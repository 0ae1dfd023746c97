"""The RFC 3161 timestamp authority, checked with the openssl command line."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, tsp
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from keys.signer import KeySigner, to_asn1
from keys.tsa import InProcessTimeStamper, TimestampAuthority, TimeStampResponse
from tests.keys.openssl import openssl
from tests.testpki import PKIFiles, TestPKI


def _query(tmp_path: Path, *options: str) -> bytes:
    (tmp_path / "data.txt").write_bytes(b"a sealed licence")
    openssl("ts", "-query", "-data", tmp_path / "data.txt", *options, "-out", tmp_path / "q.tsq")
    return (tmp_path / "q.tsq").read_bytes()


def _status(der: bytes) -> tuple[str, set[str]]:
    status = TimeStampResponse.load(der)["status"]
    return status["status"].native, set(status["fail_info"].native or ())


@pytest.mark.parametrize("digest", ["-sha256", "-sha384", "-sha512"])
def test_openssl_verifies_a_granted_token(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path, digest: str
) -> None:
    query = _query(tmp_path, digest, "-cert")
    reply = pki.timestamp_authority().respond(query)
    assert reply.granted
    assert reply.detail is None
    (tmp_path / "r.tsr").write_bytes(reply.der)
    result = openssl(
        "ts",
        "-verify",
        "-in",
        tmp_path / "r.tsr",
        "-queryfile",
        tmp_path / "q.tsq",
        "-CAfile",
        pki_files.root,
        "-untrusted",
        pki_files.chain,
    )
    assert "Verification: OK" in result.stdout


MOMENT = datetime.datetime(2026, 5, 4, 3, 2, 1, 987654, tzinfo=datetime.UTC)
"""The authority's pinned time in the token tests, with a fraction to drop."""


@dataclasses.dataclass(frozen=True)
class _Token:
    """A query, the authority that answered it, and the token's signed data."""

    query: tsp.TimeStampReq
    authority: TimestampAuthority
    signed_data: cms.SignedData

    @property
    def info(self) -> tsp.TSTInfo:
        info: tsp.TSTInfo = self.signed_data["encap_content_info"]["content"].parsed
        return info


@pytest.fixture
def token(pki: TestPKI, tmp_path: Path) -> _Token:
    authority = TimestampAuthority(authority=pki.tsa, clock=lambda: MOMENT, accuracy_seconds=2)
    query = tsp.TimeStampReq.load(_query(tmp_path, "-sha256", "-cert"))
    response = tsp.TimeStampResp.load(authority.respond(query.dump()).der)
    return _Token(query, authority, response["time_stamp_token"]["content"])


def test_token_answers_the_query(token: _Token) -> None:
    assert token.info["nonce"].native == token.query["nonce"].native
    assert token.info["message_imprint"].dump() == token.query["message_imprint"].dump()


def test_token_names_the_policy_the_accuracy_and_the_tsa(token: _Token) -> None:
    assert token.info["policy"].dotted == token.authority.policy_oid
    assert token.info["accuracy"]["seconds"].native == 2
    assert token.info["tsa"].chosen.native["common_name"] == "eContract Test TSA"


def test_token_time_is_the_clocks_to_the_second(token: _Token) -> None:
    assert token.info["gen_time"].native == MOMENT.replace(microsecond=0)


def test_token_signs_only_the_attributes_rfc_5816_asks_for(token: _Token) -> None:
    attrs = {a["type"].native for a in token.signed_data["signer_infos"][0]["signed_attrs"]}
    assert attrs == {"content_type", "message_digest", "signing_certificate_v2"}


def test_token_carries_the_tsa_and_issuing_certificates_when_asked(
    pki: TestPKI, token: _Token
) -> None:
    certs = {c.chosen.dump() for c in token.signed_data["certificates"]}
    assert certs == {
        pki.tsa.certificate.public_bytes(Encoding.DER),
        pki.issuing.certificate.public_bytes(Encoding.DER),
    }


def test_certificates_are_left_out_without_cert_req(pki: TestPKI, tmp_path: Path) -> None:
    reply = pki.timestamp_authority().respond(_query(tmp_path, "-sha256"))
    token = tsp.TimeStampResp.load(reply.der)["time_stamp_token"]
    assert reply.granted
    assert not token["content"]["certificates"].native


def test_serial_numbers_differ(pki: TestPKI, tmp_path: Path) -> None:
    query = _query(tmp_path, "-sha256")
    authority = pki.timestamp_authority()
    serials = {
        tsp.TimeStampResp.load(authority.respond(query).der)["time_stamp_token"]["content"][
            "encap_content_info"
        ]["content"]
        .parsed["serial_number"]
        .native
        for _ in range(3)
    }
    assert len(serials) == 3


@pytest.mark.parametrize("digest", ["-sha1", "-md5"])
def test_weak_hash_is_rejected_with_bad_alg(pki: TestPKI, tmp_path: Path, digest: str) -> None:
    reply = pki.timestamp_authority().respond(_query(tmp_path, digest, "-cert"))
    assert not reply.granted
    assert reply.detail is not None
    assert digest[1:] in reply.detail
    assert _status(reply.der) == ("rejection", {"bad_alg"})


@pytest.mark.parametrize("garbage", [b"", b"not a request", b"\x30\x03\x02\x01\x01"])
def test_garbage_is_rejected_with_bad_data_format(pki: TestPKI, garbage: bytes) -> None:
    reply = pki.timestamp_authority().respond(garbage)
    assert not reply.granted
    assert _status(reply.der) == ("rejection", {"bad_data_format"})


def test_foreign_policy_is_rejected(pki: TestPKI, tmp_path: Path) -> None:
    reply = pki.timestamp_authority().respond(_query(tmp_path, "-sha256", "-tspolicy", "1.2.3.4"))
    assert _status(reply.der) == ("rejection", {"unaccepted_policy"})


def test_own_policy_is_accepted(pki: TestPKI, tmp_path: Path) -> None:
    authority = pki.timestamp_authority()
    reply = authority.respond(_query(tmp_path, "-sha256", "-tspolicy", authority.policy_oid))
    assert reply.granted


def test_wrong_imprint_length_is_bad_data_format(pki: TestPKI) -> None:
    query = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": b"short",
            },
        }
    )
    reply = pki.timestamp_authority().respond(query.dump())
    assert _status(reply.der) == ("rejection", {"bad_data_format"})


def test_authority_refuses_a_certificate_without_time_stamping_eku(pki: TestPKI) -> None:
    with pytest.raises(ValueError, match="timeStamping"):
        TimestampAuthority(authority=pki.ocsp)


def test_in_process_timestamper_returns_a_token(pki: TestPKI) -> None:
    digest = hashlib.sha256(b"document").digest()
    token = asyncio.run(pki.timestamper().async_timestamp(digest, "sha256"))
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == digest


def test_in_process_timestamper_raises_on_rejection(pki: TestPKI) -> None:
    digest = hashlib.sha1(b"document").digest()
    with pytest.raises(TimestampRequestError, match="sha1"):
        asyncio.run(pki.timestamper().async_timestamp(digest, "sha1"))


def test_in_process_timestamper_is_a_pyhanko_timestamper(pki: TestPKI) -> None:
    from pyhanko.sign.timestamps.api import TimeStamper  # noqa: PLC0415

    assert isinstance(InProcessTimeStamper(pki.timestamp_authority()), TimeStamper)


def _tst_info(token_der: bytes) -> Any:
    """The parsed TSTInfo of a DER token."""
    return cms.ContentInfo.load(token_der)["content"]["encap_content_info"]["content"].parsed


def _verify_token(pki_files: PKIFiles, tmp_path: Path, token: bytes, *check: str | Path) -> None:
    (tmp_path / "token.der").write_bytes(token)
    result = openssl(
        "ts",
        "-verify",
        "-in",
        tmp_path / "token.der",
        "-token_in",
        *check,
        "-CAfile",
        pki_files.root,
        "-untrusted",
        pki_files.chain,
    )
    assert "Verification: OK" in result.stdout


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
def test_openssl_verifies_a_stamped_token_against_its_digest(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path, algorithm: str
) -> None:
    digest = hashlib.new(algorithm, b"a sealed licence").digest()
    token = pki.timestamp_authority().stamp(digest, algorithm)
    _verify_token(pki_files, tmp_path, token, "-digest", digest.hex())


def test_openssl_verifies_a_stamped_token_against_its_query(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    query = tsp.TimeStampReq.load(_query(tmp_path, "-sha384", "-cert"))
    imprint = query["message_imprint"]
    token = pki.timestamp_authority().stamp(
        imprint["hashed_message"].native,
        imprint["hash_algorithm"]["algorithm"].native,
        nonce=query["nonce"].native,
    )
    # -queryfile also checks the nonce and the policy-less request against the token.
    _verify_token(pki_files, tmp_path, token, "-queryfile", tmp_path / "q.tsq")


@pytest.mark.parametrize("nonce", [None, 0, 127, 128, 2**63 + 7, -1, -128, -129])
@pytest.mark.parametrize("cert_req", [True, False])
def test_stamped_token_is_der(pki: TestPKI, nonce: int | None, cert_req: bool) -> None:
    # asn1crypto re-encodes every field from its value with force=True: equal bytes mean
    # the hand-assembled token is the unique DER encoding (integers, lengths, set order).
    token = pki.timestamp_authority().stamp(
        hashlib.sha256(b"x").digest(), "sha256", nonce=nonce, cert_req=cert_req
    )
    assert cms.ContentInfo.load(token).dump(force=True) == token
    assert _tst_info(token)["nonce"].native == nonce


def test_stamped_token_matches_a_granted_response(pki: TestPKI, tmp_path: Path) -> None:
    moment = datetime.datetime(2026, 5, 4, 3, 2, 1, 987654, tzinfo=datetime.UTC)
    authority = TimestampAuthority(authority=pki.tsa, clock=lambda: moment, accuracy_seconds=2)
    query = tsp.TimeStampReq.load(_query(tmp_path, "-sha512", "-cert"))
    imprint = query["message_imprint"]
    token = authority.stamp(imprint["hashed_message"].native, "SHA512", nonce=query["nonce"].native)
    reply = tsp.TimeStampResp.load(authority.respond(query.dump()).der)
    stamped, answered = _tst_info(token), reply["time_stamp_token"]["content"]
    expected = answered["encap_content_info"]["content"].parsed
    # Everything but the serial number is the same, the message imprint included.
    for name in ("version", "policy", "message_imprint", "gen_time", "accuracy", "nonce", "tsa"):
        assert stamped[name].dump() == expected[name].dump(), name
    signed_data = cms.ContentInfo.load(token)["content"]
    assert signed_data["certificates"].dump() == answered["certificates"].dump()


@pytest.mark.parametrize(
    ("digest", "algorithm", "message"),
    [
        (hashlib.sha1(b"x").digest(), "sha1", "sha1"),
        (hashlib.md5(b"x").digest(), "md5", "md5"),
        (b"short", "sha256", "not a sha256 digest"),
    ],
)
def test_stamp_refuses_like_respond(
    pki: TestPKI, digest: bytes, algorithm: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pki.timestamp_authority().stamp(digest, algorithm)


def _two_tokens(pki: TestPKI) -> tuple[tsp.TSTInfo, tsp.TSTInfo]:
    authority = pki.timestamp_authority()
    digest = hashlib.sha256(b"document").digest()
    first, second = (_tst_info(authority.stamp(digest, "sha256")) for _ in range(2))
    return first, second


def test_serials_differ(pki: TestPKI) -> None:
    first, second = _two_tokens(pki)
    assert first["serial_number"].native != second["serial_number"].native


def test_gen_time_does_not_go_back(pki: TestPKI) -> None:
    first, second = _two_tokens(pki)
    assert first["gen_time"].native <= second["gen_time"].native


def test_gen_time_is_utc_to_the_second(pki: TestPKI) -> None:
    # A clock in another zone still gives a UTC GeneralizedTime, without fractions.
    moment = datetime.datetime(
        2026, 1, 1, 7, 30, 15, 500000, tzinfo=datetime.timezone(datetime.timedelta(hours=8))
    )
    authority = TimestampAuthority(authority=pki.tsa, clock=lambda: moment)
    info = _tst_info(authority.stamp(hashlib.sha256(b"x").digest(), "sha256"))
    assert info["gen_time"].contents == b"20251231233015Z"


@pytest.mark.parametrize("include_nonce", [True, False])
def test_in_process_timestamper_nonce(pki: TestPKI, include_nonce: bool) -> None:
    stamper = InProcessTimeStamper(pki.timestamp_authority(), include_nonce=include_nonce)
    token = asyncio.run(stamper.async_timestamp(hashlib.sha256(b"x").digest(), "sha256"))
    assert (token["content"]["encap_content_info"]["content"].parsed["nonce"].native is None) != (
        include_nonce
    )


def test_in_process_timestamper_caches_its_dummy_response(pki: TestPKI) -> None:
    stamper = pki.timestamper()

    async def twice() -> tuple[Any, Any]:
        return (
            await stamper.async_dummy_response("sha256"),
            await stamper.async_dummy_response("sha256"),
        )

    first, second = asyncio.run(twice())
    assert first is second
    # pyHanko gathers the TSA's certificates from the dummy token for its validation paths.
    registered = {c.dump() for c in stamper.cert_registry}
    assert registered == {
        pki.tsa.certificate.public_bytes(Encoding.DER),
        pki.issuing.certificate.public_bytes(Encoding.DER),
    }


def test_in_process_timestamper_still_answers_requests(pki: TestPKI) -> None:
    stamper = pki.timestamper()
    _, request = stamper.request_cms(  # type: ignore[no-untyped-call]  # untyped upstream
        hashlib.sha256(b"x").digest(), "sha256"
    )
    response = asyncio.run(stamper.async_request_tsa_response(request))
    assert response["status"]["status"].native == "granted"


def _one_page_pdf() -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.drawString(72, 720, "eContract test document")
    page.save()
    return out.getvalue()


def test_pyhanko_accepts_a_b_t_seal_timestamped_in_process(
    pki: TestPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle, cert = pki.make_seal()
    signer = KeySigner.for_handle(handle, cert, pki.chain)
    authority = pki.timestamp_authority()

    def no_round_trip(_query: bytes) -> None:
        raise AssertionError("pyHanko went through a TimeStampReq")

    # The token must come from stamp(), not from encoding a request and parsing a response.
    monkeypatch.setattr(authority, "respond", no_round_trip)
    stamper = InProcessTimeStamper(authority)
    metadata = signers.PdfSignatureMetadata(
        field_name="Seal", subfilter=fields.SigSeedSubFilter.PADES
    )
    output = signers.PdfSigner(metadata, signer=signer, timestamper=stamper).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(_one_page_pdf())),
        output=io.BytesIO(),
        bytes_reserved=16384,
    )
    signature = PdfFileReader(io.BytesIO(output.getvalue())).embedded_signatures[0]
    context = ValidationContext(trust_roots=[to_asn1(pki.root.certificate)], allow_fetching=False)
    status = validate_pdf_signature(signature, context, ts_validation_context=context)
    details = status.pretty_print_details()  # type: ignore[no-untyped-call]
    assert status.intact, details
    assert status.valid, details
    assert status.trusted, details
    timestamp = status.timestamp_validity
    assert timestamp is not None, details
    assert timestamp.intact, details
    assert timestamp.valid, details
    assert timestamp.trusted, details
