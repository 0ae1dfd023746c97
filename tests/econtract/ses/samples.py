"""The seal data test vectors: ofdrw's samples (tests/data/ses/README.md) and our own."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from econtract.ses import SESSigner, make_ses_seal
from econtract.ses.picture import draw_seal_png
from tests.signing.sm2 import issue_sm2_seal, sm2_hierarchy
from tests.testpki import DEPARTMENT_NAME

DATA = Path(__file__).resolve().parents[2] / "data" / "ses"

OFDRW_SAMPLES = {
    "ofdrw-UserV4.esl": ("SES_Seal", 4),
    "ofdrw-UserV1.esl": ("SES_Seal", 1),
    "ofdrw-SignedValueV4.dat": ("SES_Signature", 4),
}
"""ofdrw's files and what each one is."""


@cache
def now() -> datetime.datetime:
    """The seal's creation time: a minute after the test hierarchy exists.

    The hierarchy is made by whichever test asks first, which in a long run can be
    well after this module is imported, so the time is taken once it is there.
    """
    sm2_hierarchy()
    made = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return made + datetime.timedelta(minutes=1)


def load_sample(name: str) -> bytes:
    """The bytes of one file of tests/data/ses."""
    return (DATA / name).read_bytes()


@dataclass(frozen=True)
class OurSeal:
    """An SM2 seal of the test department, its SESeal made by the SM2 issuing CA."""

    der: bytes
    signer: SESSigner
    anchors: tuple[bytes, ...]


@cache
def our_seal() -> OurSeal:
    """Made once: the test hierarchy's issuing CA is the maker, the seal's key the signer."""
    hierarchy = sm2_hierarchy()
    created = now()
    start, end = created - datetime.timedelta(days=1), created + datetime.timedelta(days=365)
    handle, cert = issue_sm2_seal(hierarchy, not_before=start, not_after=end)
    cert_der = cert.public_bytes(Encoding.DER)
    maker = SESSigner(
        handle=hierarchy.issuing.handle,
        certificate_der=hierarchy.issuing.certificate.public_bytes(Encoding.DER),
    )
    der = make_ses_seal(
        maker=maker,
        es_id="seal-0123456789abcdef0123",
        seal_type=2,
        name=f"{DEPARTMENT_NAME}证照专用章",
        signer_certificates=[cert_der],
        created=created,
        valid_start=start,
        valid_end=end,
        picture_png=draw_seal_png(DEPARTMENT_NAME, "证照专用章"),
        picture_mm=(40, 40),
    )
    anchors = tuple(c.public_bytes(Encoding.DER) for c in hierarchy.chain)
    return OurSeal(der, SESSigner(handle=handle, certificate_der=cert_der), anchors)


def flip(data: bytes, offset: int) -> bytes:
    """``data`` with one bit changed at ``offset``."""
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]
