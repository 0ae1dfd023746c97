"""The ASN.1 shapes of GB/T 38540-2020 (seal data v4) and GM/T 0031-2014 (v1), in asn1crypto.

asn1crypto has no GB/T 38540 module and no maintained Python library has one either; these
classes are written from the standard's ASN.1 (and checked against structures made by the
Java library ofdrw, ``tests/data/ses/``). Parsing is asn1crypto's, so an unreadable structure
raises its ``ValueError`` where it is read (:mod:`econtract.ses.read` wraps it).

Version 4 (GB/T 38540-2020)::

    SESeal ::= SEQUENCE { eSealInfo SES_SealInfo, cert OCTET STRING,
                          signAlgID OBJECT IDENTIFIER, signedValue BIT STRING }
    SES_SealInfo ::= SEQUENCE { header SES_Header, esID IA5String,
                                property SES_ESPropertyInfo, picture SES_ESPictrueInfo,
                                extDatas ExtensionDatas OPTIONAL }
    SES_Header ::= SEQUENCE { ID IA5String ("ES"), version INTEGER (4), Vid IA5String }
    SES_ESPropertyInfo ::= SEQUENCE { type INTEGER, name UTF8String, certListType INTEGER,
                                      certList SES_CertList, createDate GeneralizedTime,
                                      validStart GeneralizedTime, validEnd GeneralizedTime }
    SES_CertList ::= CHOICE { certs CertInfoList, certDigestList CertDigestList }
        -- both SEQUENCE OF: which one is told by certListType (1 certificates, 2 digests)
    SES_ESPictrueInfo ::= SEQUENCE { type IA5String, data OCTET STRING,
                                     width INTEGER, height INTEGER }   -- millimetres
    SES_Signature ::= SEQUENCE { toSign TBS_Sign, cert OCTET STRING,
                                 signatureAlgID OBJECT IDENTIFIER, signature BIT STRING,
                                 timeStamp [0] EXPLICIT BIT STRING OPTIONAL }
    TBS_Sign ::= SEQUENCE { version INTEGER, eseal SESeal, timeInfo GeneralizedTime,
                            dataHash BIT STRING, propertyInfo IA5String,
                            extDatas [0] EXPLICIT ExtensionDatas OPTIONAL }

Version 1 (GM/T 0031-2014) differs: the seal's signature sits in ``SES_SignInfo`` (cert,
algorithm, signData) after the seal information, its times are UTCTime, its certificate list
is a plain SEQUENCE OF OCTET STRING; ``TBS_Sign`` carries the signer's certificate and
algorithm, its time and hash as BIT STRINGs, and ``SES_Signature`` is ``{toSign, signature}``.
"""

# asn1crypto declares a schema as class-level lists (_fields, _alternatives).
# ruff: noqa: RUF012

from __future__ import annotations

from asn1crypto import core

__all__ = [
    "CertDigestList",
    "CertInfoList",
    "ExtensionDatas",
    "SESHeader",
    "SESPictureInfo",
    "SESSeal",
    "SESSealInfo",
    "SESSealV1",
    "SESSignature",
    "SESSignatureV1",
    "SignedByMakerV1",
    "TBSSign",
    "TBSSignV1",
]


class ExtData(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """One extension: an OID, whether it is critical, its value."""

    _fields = [
        ("extn_id", core.ObjectIdentifier),
        ("critical", core.Boolean, {"default": False}),
        ("extn_value", core.OctetString),
    ]


class ExtensionDatas(core.SequenceOf):  # type: ignore[misc]  # asn1crypto is untyped
    """The seal's or signature's own extensions (自定义数据)."""

    _child_spec = ExtData


class SESHeader(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """``ES``, the version (4 or 1) and the maker's vendor id (厂商标识)."""

    _fields = [
        ("id", core.IA5String),
        ("version", core.Integer),
        ("vid", core.IA5String),
    ]


class CertInfoList(core.SequenceOf):  # type: ignore[misc]  # asn1crypto is untyped
    """The signers' certificates, DER each in an OCTET STRING (certListType 1)."""

    _child_spec = core.OctetString


class CertDigestObj(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """A signer's certificate by its digest: the digest's name and value."""

    _fields = [("type", core.PrintableString), ("value", core.OctetString)]


class CertDigestList(core.SequenceOf):  # type: ignore[misc]  # asn1crypto is untyped
    """The signers' certificates by digest (certListType 2)."""

    _child_spec = CertDigestObj


class SESPropertyInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """The seal's properties (v4): type, name, who may sign with it, its dates."""

    _fields = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list_type", core.Integer),
        # An untagged CHOICE of two SEQUENCE OFs cannot be told apart by its tag:
        # cert_list_type says which it is (econtract.ses.read parses it).
        ("cert_list", core.Any),
        ("create_date", core.GeneralizedTime),
        ("valid_start", core.GeneralizedTime),
        ("valid_end", core.GeneralizedTime),
    ]


class SESPictureInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """The seal's picture: its format (``PNG``, ``SVG``, ``OFD``…), data, size in mm."""

    _fields = [
        ("type", core.IA5String),
        ("data", core.OctetString),
        ("width", core.Integer),
        ("height", core.Integer),
    ]


class SESSealInfo(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """What the seal maker signs (v4): the seal's header, id, properties, picture."""

    _fields = [
        ("header", SESHeader),
        ("es_id", core.IA5String),
        ("property", SESPropertyInfo),
        ("picture", SESPictureInfo),
        ("ext_datas", ExtensionDatas, {"optional": True}),
    ]


class SESSeal(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """SESeal v4 (GB/T 38540): the seal information signed by the seal maker."""

    _fields = [
        ("e_seal_info", SESSealInfo),
        ("cert", core.OctetString),
        ("sign_alg_id", core.ObjectIdentifier),
        ("signed_value", core.OctetBitString),
    ]


class TBSSign(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """What a signer signs (v4): the seal, the time, the data's hash and its description."""

    _fields = [
        ("version", core.Integer),
        ("eseal", SESSeal),
        ("time_info", core.GeneralizedTime),
        ("data_hash", core.OctetBitString),
        ("property_info", core.IA5String),
        ("ext_datas", ExtensionDatas, {"explicit": 0, "optional": True}),
    ]


class SESSignature(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """SES_Signature v4 (GB/T 38540): a signature made with a seal."""

    _fields = [
        ("to_sign", TBSSign),
        ("cert", core.OctetString),
        ("signature_alg_id", core.ObjectIdentifier),
        ("signature", core.OctetBitString),
        # The RFC 3161 TimeStampToken over the signature value, as a BIT STRING.
        ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True}),
    ]


# -- version 1 (GM/T 0031-2014), for reading -------------------------------------------------


class UTCOrGeneralizedTime(core.Choice):  # type: ignore[misc]  # asn1crypto is untyped
    """A v1 date: UTCTime as the standard says, GeneralizedTime as some makers write it."""

    _alternatives = [("utc", core.UTCTime), ("general", core.GeneralizedTime)]


class SESPropertyInfoV1(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """The seal's properties (v1)."""

    _fields = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list", CertInfoList),
        ("create_date", UTCOrGeneralizedTime),
        ("valid_start", UTCOrGeneralizedTime),
        ("valid_end", UTCOrGeneralizedTime),
    ]


class SESSealInfoV1(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """The seal information (v1)."""

    _fields = [
        ("header", SESHeader),
        ("es_id", core.IA5String),
        ("property", SESPropertyInfoV1),
        ("picture", SESPictureInfo),
        ("ext_datas", ExtensionDatas, {"optional": True}),
    ]


class SESSignInfoV1(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """The seal maker's signature (v1), over DER(SEQUENCE {sealInfo, cert, signatureAlgorithm})."""

    _fields = [
        ("cert", core.OctetString),
        ("signature_algorithm", core.ObjectIdentifier),
        ("sign_data", core.OctetBitString),
    ]


class SignedByMakerV1(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """What a v1 seal maker signs: the seal information, its certificate and its algorithm."""

    _fields = [
        ("info", SESSealInfoV1),
        ("cert", core.OctetString),
        ("alg", core.ObjectIdentifier),
    ]


class SESSealV1(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """SESeal v1 (GM/T 0031-2014)."""

    _fields = [("e_seal_info", SESSealInfoV1), ("sign_info", SESSignInfoV1)]


class TBSSignV1(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """What a signer signs (v1); its time and hash are BIT STRINGs."""

    _fields = [
        ("version", core.Integer),
        ("eseal", SESSealV1),
        ("time_info", core.OctetBitString),
        ("data_hash", core.OctetBitString),
        ("property_info", core.IA5String),
        ("cert", core.OctetString),
        ("signature_algorithm", core.ObjectIdentifier),
    ]


class SESSignatureV1(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """SES_Signature v1 (GM/T 0031-2014)."""

    _fields = [("to_sign", TBSSignV1), ("signature", core.OctetBitString)]
