"""Reading and checking GB/T 38540 (v4) and GM/T 0031-2014 (v1) seal data and signatures.

No private key is involved: a structure is parsed, each signature in it (the seal maker's over
the seal; the signer's over ``TBS_Sign``) is checked with SM2/SM3 and the default user id, each
certificate's validity is compared with the time it was used, and, when trust anchors are given
(the service's SM2 root and issuing CA), the certificate's chain up to them.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from asn1crypto import core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509

import keys.oids  # noqa: F401 (teaches asn1crypto the SM2/SM3 names)
from econtract.errors import InvalidInputError
from econtract.ses.asn1 import (
    CertDigestList,
    CertInfoList,
    SESSeal,
    SESSealV1,
    SESSignature,
    SESSignatureV1,
    SignedByMakerV1,
)
from keys.oids import SM2_WITH_SM3
from keys.sm2 import sm2_verify

__all__ = ["SESReport", "SESUnreadableError", "check_ses", "parse_ses"]

Kind = Literal["SES_Seal", "SES_Signature"]


class SESUnreadableError(InvalidInputError):
    """The bytes are no SES_Seal or SES_Signature of a version this service reads."""

    code = "ses-unreadable"
    title = "Not GB/T 38540 seal data."


@dataclass(frozen=True, kw_only=True)
class SESReport:
    """What a structure holds and whether its signatures hold: one bottom line, its reasons."""

    kind: Kind
    """``SES_Seal`` or ``SES_Signature``."""
    version: int
    """4 (GB/T 38540-2020) or 1 (GM/T 0031-2014)."""
    fields: tuple[tuple[str, str, str], ...]
    """What it holds, as (zh label, en label, value), in the structure's order."""
    problems: tuple[str, ...] = field(default=())
    """Why it does not verify (zh and en in one line each); empty when it does."""

    @property
    def verified(self) -> bool:
        """Whether every signature and certificate check passed."""
        return not self.problems


@dataclass(frozen=True)
class _Parsed:
    kind: Kind
    version: int
    value: core.Sequence


def parse_ses(data: bytes) -> core.Sequence:
    """The structure in ``data`` (SESeal or SES_Signature, v4 or v1), or an error naming why not."""
    return _parse(data).value


def _header_version(seal: core.Asn1Value) -> int:
    # SESeal → SES_SealInfo → SES_Header → version, read loosely: which shape to apply
    # depends on it.
    info = core.Sequence.load(seal.dump())
    header = core.Sequence.load(info[0].dump())
    inner = core.Sequence.load(header[0].dump())
    return int(core.Integer.load(inner[1].dump()).native)


def _parse(data: bytes) -> _Parsed:
    try:
        outer = core.Sequence.load(data, strict=True)
        first = core.Sequence.load(outer[0].dump())
        # A seal begins with SES_SealInfo (its first element a SEQUENCE: the header); a
        # signature begins with TBS_Sign (its first element an INTEGER: the version).
        if isinstance(core.load(first[0].dump()), core.Integer):
            version = _header_version(first[1])
            shape: type[core.Sequence] = SESSignature if version == 4 else SESSignatureV1
            kind: Kind = "SES_Signature"
        else:
            version = int(core.Integer.load(core.Sequence.load(first[0].dump())[1].dump()).native)
            shape = SESSeal if version == 4 else SESSealV1
            kind = "SES_Seal"
        if version not in (1, 4):
            raise SESUnreadableError(
                f"版本 {version} 不受支持。 Version {version} is not supported (1 and 4 are)."
            )
        value = shape.load(data, strict=True)
        value.native  # noqa: B018 (parses every field now, so that damage shows here)
    except SESUnreadableError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise SESUnreadableError(
            "不是可读的电子印章或电子签章数据。 Not a readable SES_Seal or SES_Signature "
            f"(GB/T 38540 v4, GM/T 0031 v1): {exc}"
        ) from exc
    return _Parsed(kind, version, value)


def _der_signature(value: bytes) -> bytes:
    """An SM2 signature as DER ``(r, s)``; some makers write the bare 64-byte ``r || s``."""
    if len(value) == 64:
        from asn1crypto.algos import DSASignature  # noqa: PLC0415

        return bytes(DSASignature.from_p1363(value).dump())
    return value


def _text(value: object) -> str:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


class _Checker:
    """Collects the fields to print and the problems found."""

    def __init__(self, anchors: Sequence[asn1_x509.Certificate]) -> None:
        self.fields: list[tuple[str, str, str]] = []
        self.problems: list[str] = []
        self.anchors = list(anchors)

    def add(self, zh: str, en: str, value: object) -> None:
        self.fields.append((zh, en, _text(value)))

    def certificate(self, der: bytes, role_zh: str, role_en: str) -> asn1_x509.Certificate | None:
        try:
            cert = asn1_x509.Certificate.load(der, strict=True)
            cert.native  # noqa: B018
        except ValueError:
            self.problems.append(
                f"{role_zh}证书无法读取。 The {role_en}'s certificate is unreadable."
            )
            return None
        for zh, en, value in (
            ("主体", "subject", cert.subject.human_friendly),
            ("颁发者", "issuer", cert.issuer.human_friendly),
            ("序列号", "serial", f"{cert.serial_number:X}"),
            ("有效期自", "valid from", cert.not_valid_before),
            ("有效期至", "valid until", cert.not_valid_after),
        ):
            self.add(f"{role_zh}证书{zh}", f"{role_en} certificate {en}", value)
        return cert

    def signature(
        self,
        cert: asn1_x509.Certificate | None,
        algorithm: str,
        signature: bytes,
        signed: bytes,
        role_zh: str,
        role_en: str,
    ) -> None:
        if algorithm != SM2_WITH_SM3:
            self.problems.append(
                f"{role_zh}签名算法 {algorithm} 不受支持。 The {role_en}'s signature algorithm "
                f"{algorithm} is not SM2-with-SM3 ({SM2_WITH_SM3})."
            )
            return
        if cert is None:
            return
        public_key = cert["tbs_certificate"]["subject_public_key_info"].dump()
        if sm2_verify(public_key, _der_signature(signature), signed):
            self.add(f"{role_zh}签名", f"{role_en} signature", "有效 valid (SM2/SM3)")
        else:
            self.problems.append(
                f"{role_zh}签名无效。 The {role_en}'s signature does not verify (SM2/SM3, user id "
                "1234567812345678)."
            )

    def validity(
        self, cert: asn1_x509.Certificate | None, at: datetime.datetime, role_zh: str, role_en: str
    ) -> None:
        if cert is None:
            return
        if not cert.not_valid_before <= at <= cert.not_valid_after:
            self.problems.append(
                f"{role_zh}证书在 {_text(at)} 不在有效期内。 The {role_en}'s certificate was not "
                f"valid at {_text(at)} (valid {_text(cert.not_valid_before)} to "
                f"{_text(cert.not_valid_after)})."
            )

    def chain(self, cert: asn1_x509.Certificate | None, role_zh: str, role_en: str) -> None:
        """Up to an anchor, when the certificate names one of them as its issuer."""
        if cert is None or not self.anchors:
            return
        by_subject = {a.subject.dump(): a for a in self.anchors}
        current, steps = cert, 0
        while current.issuer.dump() in by_subject and steps < 4:
            issuer = by_subject[current.issuer.dump()]
            tbs = current["tbs_certificate"].dump()
            key = issuer["tbs_certificate"]["subject_public_key_info"].dump()
            if not sm2_verify(key, current["signature_value"].native, tbs):
                self.problems.append(
                    f"{role_zh}证书的签发签名无效。 The {role_en}'s certificate is not signed by "
                    f"{issuer.subject.human_friendly}."
                )
                return
            if current.self_signed == "maybe" or current is issuer:
                break
            current, steps = issuer, steps + 1
        ours = steps > 0 or cert.issuer.dump() in by_subject
        verdict = "至本服务 SM2 根 to the service's SM2 root" if ours else "非本服务 not ours"
        self.add(f"{role_zh}证书链", f"{role_en} chain", verdict)


def _cert_list(property_info: core.Sequence, version: int) -> list[bytes]:
    if version == 1:
        return [c.native for c in property_info["cert_list"]]
    kind = property_info["cert_list_type"].native
    raw = property_info["cert_list"].dump()
    if kind == 1:
        return [c.native for c in CertInfoList.load(raw)]
    if kind == 2:
        return [d["value"].native for d in CertDigestList.load(raw)]
    raise SESUnreadableError(f"未知的证书列表类型 {kind}。 Unknown certListType {kind}.")


def _seal(check: _Checker, seal: core.Sequence, version: int) -> None:
    info = seal["e_seal_info"]
    header, prop, picture = info["header"], info["property"], info["picture"]
    check.add("版本", "Version", f"{header['id'].native} {header['version'].native}")
    check.add("厂商标识", "Vendor id", header["vid"].native)
    check.add("印章标识", "Seal id", info["es_id"].native)
    check.add("印章类型", "Seal type", prop["type"].native)
    check.add("印章名称", "Seal name", prop["name"].native)
    signers = _cert_list(prop, version)
    check.add("签章者证书数", "Signer certificates", len(signers))
    dates = [prop[n] for n in ("create_date", "valid_start", "valid_end")]
    created, start, end = (d.chosen.native if version == 1 else d.native for d in dates)
    check.add("制作日期", "Made", created)
    check.add("有效期自", "Valid from", start)
    check.add("有效期至", "Valid until", end)
    check.add(
        "印章图片",
        "Picture",
        f"{picture['type'].native}, {len(picture['data'].native)} B, "
        f"{picture['width'].native} × {picture['height'].native} mm",
    )
    if version == 4:
        cert_der, algorithm = seal["cert"].native, seal["sign_alg_id"].dotted
        signature, signed = seal["signed_value"].native, info.dump()
    else:
        sign_info = seal["sign_info"]
        cert_der, algorithm = sign_info["cert"].native, sign_info["signature_algorithm"].dotted
        signature = sign_info["sign_data"].native
        signed = SignedByMakerV1(
            {"info": info, "cert": sign_info["cert"], "alg": sign_info["signature_algorithm"]}
        ).dump()
    cert = check.certificate(cert_der, "制章者", "seal maker")
    check.signature(cert, algorithm, signature, signed, "制章者", "seal maker")
    check.validity(cert, created, "制章者", "seal maker")
    check.chain(cert, "制章者", "seal maker")


def _signature(check: _Checker, value: core.Sequence, version: int) -> None:
    tbs = value["to_sign"]
    _seal(check, tbs["eseal"], version)
    if version == 4:
        at = tbs["time_info"].native
        cert_der, algorithm = value["cert"].native, value["signature_alg_id"].dotted
    else:
        # v1 writes the time as a BIT STRING holding the GeneralizedTime's characters.
        at = core.GeneralizedTime(tbs["time_info"].native.decode("ascii")).native
        cert_der, algorithm = tbs["cert"].native, tbs["signature_algorithm"].dotted
    check.add("签章时间", "Signed at", at)
    check.add("原文杂凑值", "Data hash", tbs["data_hash"].native.hex())
    check.add("原文属性", "Data property", tbs["property_info"].native)
    cert = check.certificate(cert_der, "签章者", "signer")
    check.signature(cert, algorithm, value["signature"].native, tbs.dump(), "签章者", "signer")
    check.validity(cert, at, "签章者", "signer")
    check.chain(cert, "签章者", "signer")
    if version == 4 and value["time_stamp"].native is not None:
        check.add("时间戳", "Timestamp", f"{len(value['time_stamp'].native)} B")


def check_ses(data: bytes, *, anchors: Sequence[bytes] = ()) -> SESReport:
    """Read ``data`` and check every signature and certificate in it.

    ``anchors`` are DER certificates (the service's SM2 root and issuing CA): a certificate
    that names one of them as issuer is checked up to it. Raises :class:`SESUnreadableError`
    when ``data`` is not seal data.
    """
    parsed = _parse(data)
    try:
        check = _Checker([asn1_x509.Certificate.load(a) for a in anchors])
        if parsed.kind == "SES_Seal":
            _seal(check, parsed.value, parsed.version)
        else:
            _signature(check, parsed.value, parsed.version)
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise SESUnreadableError(f"电子印章数据已损坏。 The seal data is damaged: {exc}") from exc
    return SESReport(
        kind=parsed.kind,
        version=parsed.version,
        fields=tuple(check.fields),
        problems=tuple(check.problems),
    )


def public_key_of(cert_der: bytes) -> asn1_keys.PublicKeyInfo:
    """The SubjectPublicKeyInfo of a DER certificate."""
    key: asn1_keys.PublicKeyInfo = asn1_x509.Certificate.load(cert_der).public_key
    return key
