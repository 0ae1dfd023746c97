"""The GB/T 36903 metadata of a licence (电子证照元数据), as JSON and as XMP.

The same :class:`NationalMetadata` is what the API's certificate JSON carries and what each
issued PDF carries in its XMP metadata stream, so that any platform reads it without this
service. The XMP goes into the revision the issuer's seal signs: it is part of the sealed
licence and cannot be changed without breaking the seal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from xml.sax.saxutils import escape

XMP_NAMESPACE = "urn:econtract:xmp:gbt36903:1#"
"""The namespace of the licence metadata in the XMP packet (version 1 of its layout)."""
XMP_PREFIX = "gbt36903"
"""The prefix the packet binds :data:`XMP_NAMESPACE` to."""

_NAMESPACES = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    XMP_PREFIX: XMP_NAMESPACE,
}


@dataclass(frozen=True, kw_only=True)
class DocumentInfo:
    """What the PDF's document information dictionary says, repeated in the XMP packet."""

    title: str
    """``/Title``, ``dc:title``."""
    author: str
    """``/Author``, ``dc:creator``."""
    created: datetime
    """``/CreationDate`` and ``/ModDate``, ``xmp:CreateDate`` and ``xmp:ModifyDate``."""
    producer: str
    """``/Producer``, ``pdf:Producer``."""
    creator_tool: str
    """``/Creator``, ``xmp:CreatorTool``."""


class HolderType(StrEnum):
    """The kind of the holder's code (持证主体代码类型), GB/T 36903."""

    CREDIT_CODE = "001"
    """A unified social credit code (统一社会信用代码)."""
    CITIZEN_ID = "111"
    """A resident identity card number (公民身份号码)."""


NATIONAL_STATUS: dict[str, tuple[str, str]] = {
    "valid": ("01", "正常"),
    "suspended": ("02", "暂停"),
    "revoked": ("03", "注销"),
    "superseded": ("04", "换发"),
    "expired": ("05", "过期"),
    "not-yet-valid": ("06", "未生效"),
}
"""Our certificate statuses and the national status each maps to: a code and its word.

The words are those of the national integrated platform's licence status (证照状态) in its
GB/T 36903 metadata: 正常 (in force), 暂停 (suspended), 注销 (cancelled; a revocation by the
issuer, whatever its reason, is reported as cancelled), 换发 (re-issued: a newer version
replaced it), 过期 (past its validity) and 未生效 (before its first day). GB/T 36903 leaves
the code list to the platform; the two-digit codes are this service's, fixed here and nowhere
else.
"""


def national_status(status: str) -> tuple[str, str]:
    """The national status (code, word) of one of our statuses; ``ValueError`` if unknown."""
    try:
        return NATIONAL_STATUS[status]
    except KeyError:
        raise ValueError(f"No national status is defined for {status!r}.") from None


def holder_identity(
    holder_code: str | None, fields: Mapping[str, Any], id_number_fields: Sequence[str]
) -> tuple[str | None, HolderType | None]:
    """The holder's code and its kind: the credit code when the licence has one, else the
    first identity number among ``id_number_fields`` (a person), else none."""
    if holder_code:
        return holder_code, HolderType.CREDIT_CODE
    for name in id_number_fields:
        value = fields.get(name)
        if value:
            return str(value), HolderType.CITIZEN_ID
    return None, None


@dataclass(frozen=True, kw_only=True)
class NationalMetadata:
    """A licence's GB/T 36903 metadata, as the API and the PDF's XMP carry it."""

    name: str
    """The licence type's name (证照名称), e.g. 营业执照."""
    number: str
    """The licence number (证照编号)."""
    identifier: str
    """The licence identifier (证照标识, GB/T 36904)."""
    type_code: str
    """The national type code (证照类型代码), 21 characters."""
    issuer_name: str
    """The issuing authority (发证机构)."""
    issuer_code: str
    """The issuing authority's unified social credit code (发证机构代码)."""
    issue_date: date
    """The day of issue (发证日期), Beijing time."""
    valid_from: date
    """The first day of validity (有效期起始)."""
    valid_until: date | None
    """The last day of validity (有效期截止); ``None`` for 长期."""
    holder_name: str
    """The holder's name (持证主体)."""
    holder_code: str | None
    """The holder's code (持证主体代码): a credit code or an identity number."""
    holder_type: HolderType | None
    """What kind of code ``holder_code`` is; ``None`` when the licence names no code."""
    related_matter: str | None
    """The matter (关联事项) the licence was issued for; ``None`` when none was recorded."""
    status: str
    """The national status word (证照状态), see :data:`NATIONAL_STATUS`."""
    status_code: str
    """The national status code, see :data:`NATIONAL_STATUS`."""

    def as_json(self) -> dict[str, Any]:
        """The metadata as JSON values (dates in ISO 8601)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, date):
                data[key] = value.isoformat()
            elif isinstance(value, HolderType):
                data[key] = value.value
        return data

    def to_xmp(self, info: DocumentInfo) -> str:
        """An XMP packet: ``info`` in Dublin Core, XMP and PDF properties, and every field
        of this metadata as a simple property of :data:`XMP_NAMESPACE`.

        Absent values are left out; the packet is written the same way for the same
        metadata, so the rendered licence stays a function of its content.
        """
        created = info.created.isoformat()
        properties = [
            f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(info.title)}'
            "</rdf:li></rdf:Alt></dc:title>",
            f"<dc:creator><rdf:Seq><rdf:li>{escape(info.author)}</rdf:li></rdf:Seq></dc:creator>",
            f"<xmp:CreateDate>{created}</xmp:CreateDate>",
            f"<xmp:ModifyDate>{created}</xmp:ModifyDate>",
            f"<xmp:CreatorTool>{escape(info.creator_tool)}</xmp:CreatorTool>",
            f"<pdf:Producer>{escape(info.producer)}</pdf:Producer>",
            *(
                f"<{XMP_PREFIX}:{key}>{escape(str(value))}</{XMP_PREFIX}:{key}>"
                for key, value in self.as_json().items()
                if value is not None
            ),
        ]
        namespaces = "".join(f' xmlns:{p}="{uri}"' for p, uri in _NAMESPACES.items())
        return (
            '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description rdf:about=""{namespaces}>'
            f"{''.join(properties)}</rdf:Description></rdf:RDF></x:xmpmeta>"
            '<?xpacket end="r"?>'
        )
