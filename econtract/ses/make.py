"""Making GB/T 38540 (v4) seal data and signatures; the keys sign through ``keys`` handles."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import core

from econtract.ses.asn1 import (
    CertInfoList,
    SESHeader,
    SESPictureInfo,
    SESPropertyInfo,
    SESSeal,
    SESSealInfo,
    SESSignature,
    TBSSign,
)
from keys.oids import SM2_WITH_SM3
from keys.sm2 import SM2KeyHandle

__all__ = ["SEAL_TYPES", "VENDOR_ID", "SESSigner", "make_ses_seal", "make_ses_signature"]

VENDOR_ID = "eContract"
"""The maker's vendor id in every header (厂商标识)."""

SEAL_TYPES = {"official": 1, "licence": 2, "contract": 3, "platform": 4}
"""GB/T 38540's seal type integer per seal kind: 1 单位印章 (official), then the service's
special-purpose seals (专用章) in the order of :data:`keys.oids.SEAL_KIND_POLICIES`."""


@dataclass(frozen=True, kw_only=True)
class SESSigner:
    """Who signs a structure: an SM2 key held by ``keys`` and its certificate."""

    handle: SM2KeyHandle
    """The SM2 key (signs SM3 with the default user id)."""
    certificate_der: bytes
    """Its certificate, DER."""


def _time(value: datetime.datetime) -> core.GeneralizedTime:
    if value.tzinfo is None:
        raise ValueError("A time in seal data must carry its time zone.")
    return core.GeneralizedTime(value.astimezone(datetime.UTC).replace(microsecond=0))


def make_ses_seal(
    *,
    maker: SESSigner,
    es_id: str,
    seal_type: int,
    name: str,
    signer_certificates: list[bytes],
    created: datetime.datetime,
    valid_start: datetime.datetime,
    valid_end: datetime.datetime,
    picture_png: bytes,
    picture_mm: tuple[int, int],
) -> bytes:
    """The DER SESeal v4 of a seal, signed by ``maker`` over DER(SES_SealInfo)."""
    info = SESSealInfo(
        {
            "header": SESHeader({"id": "ES", "version": 4, "vid": VENDOR_ID}),
            "es_id": es_id,
            "property": SESPropertyInfo(
                {
                    "type": seal_type,
                    "name": name,
                    "cert_list_type": 1,
                    "cert_list": CertInfoList(signer_certificates),
                    "create_date": _time(created),
                    "valid_start": _time(valid_start),
                    "valid_end": _time(valid_end),
                }
            ),
            "picture": SESPictureInfo(
                {
                    "type": "PNG",
                    "data": picture_png,
                    "width": picture_mm[0],
                    "height": picture_mm[1],
                }
            ),
        }
    )
    signed_value = maker.handle.sign(info.dump(), "sm3")
    return bytes(
        SESSeal(
            {
                "e_seal_info": info,
                "cert": maker.certificate_der,
                "sign_alg_id": SM2_WITH_SM3,
                "signed_value": signed_value,
            }
        ).dump()
    )


def make_ses_signature(
    seal_ses: bytes,
    signer: SESSigner,
    data_hash: bytes,
    property_info: str,
    time: datetime.datetime,
    timestamp: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """The DER SES_Signature v4 of one sealing with the seal whose SESeal is ``seal_ses``.

    ``data_hash`` is the SM3 digest of what was sealed, ``property_info`` says what that is
    (e.g. the PDF's name or byte range), ``time`` when; ``signer`` signs DER(TBS_Sign).
    ``timestamp``, given the signature value, returns an RFC 3161 TimeStampToken (DER) over it.
    """
    if len(data_hash) != 32:
        raise ValueError(f"The data hash is an SM3 digest of 32 bytes, not {len(data_hash)}.")
    tbs = TBSSign(
        {
            "version": 4,
            "eseal": SESSeal.load(seal_ses),
            "time_info": _time(time),
            "data_hash": data_hash,
            "property_info": property_info,
        }
    )
    signature = signer.handle.sign(tbs.dump(), "sm3")
    value = SESSignature(
        {
            "to_sign": tbs,
            "cert": signer.certificate_der,
            "signature_alg_id": SM2_WITH_SM3,
            "signature": signature,
        }
    )
    if timestamp is not None:
        value["time_stamp"] = timestamp(signature)
    return bytes(value.dump())
