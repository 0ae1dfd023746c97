"""The RFC 3161 timestamp authority, checked with the openssl command line."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
from pathlib import Path

import pytest
from asn1crypto import tsp
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.timestamps.common_utils import TimestampRequestError

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


def test_token_fields(pki: TestPKI, tmp_path: Path) -> None:
    moment = datetime.datetime(2026, 5, 4, 3, 2, 1, 987654, tzinfo=datetime.UTC)
    authority = TimestampAuthority(authority=pki.tsa, clock=lambda: moment, accuracy_seconds=2)
    query = tsp.TimeStampReq.load(_query(tmp_path, "-sha256", "-cert"))
    response = tsp.TimeStampResp.load(authority.respond(query.dump()).der)
    signed_data = response["time_stamp_token"]["content"]
    info = signed_data["encap_content_info"]["content"].parsed
    assert info["policy"].dotted == authority.policy_oid
    assert info["gen_time"].native == moment.replace(microsecond=0)
    assert info["nonce"].native == query["nonce"].native
    assert info["accuracy"]["seconds"].native == 2
    assert info["message_imprint"].dump() == query["message_imprint"].dump()
    assert info["tsa"].chosen.native["common_name"] == "eContract Test TSA"
    attrs = {a["type"].native for a in signed_data["signer_infos"][0]["signed_attrs"]}
    assert attrs == {"content_type", "message_digest", "signing_certificate_v2"}
    certs = {c.chosen.dump() for c in signed_data["certificates"]}
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
