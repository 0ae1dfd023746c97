"""A seal's GB/T 38540 seal data: made when an SM2 seal is made, kept beside it, read back.

The seal maker (制章者) is the service itself, and it signs with the SM2 issuing CA's key:
the authority that certifies the seal's key is the one that vouches for its picture and
properties, a relying party already trusts its chain to the SM2 root, and no further key has
to be kept, published and rotated for it. (A dedicated maker key and certificate would keep
the CA key to certificates and CRLs only; the seal data names its maker by certificate, so
such a key can replace this one later without changing the structure.)
"""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session

from econtract.errors import NotFoundError
from econtract.models import Department, Seal, SealKind
from econtract.pki import PKI
from econtract.ses._models import SealSES
from econtract.ses.make import SEAL_TYPES, SESSigner, make_ses_seal
from econtract.ses.picture import SEAL_SIZE_MM, draw_seal_png

__all__ = ["get_seal_data", "record_seal_data", "seal_data_of_department"]


def record_seal_data(session: Session, *, seal: Seal, department: Department, pki: PKI) -> bytes:
    """Make the SESeal v4 of the SM2 ``seal`` and add it to the session; its DER."""
    if pki.sm2_issuing is None:
        raise NotFoundError("The SM2 CA hierarchy does not exist; run `econtract init`.")
    maker = pki.sm2_issuing
    kind = SealKind(seal.kind)
    name = f"{department.name}{kind.chinese_name}"
    der = make_ses_seal(
        maker=SESSigner(
            handle=maker.handle,
            certificate_der=maker.certificate.public_bytes(Encoding.DER),
        ),
        es_id=seal.id,
        seal_type=SEAL_TYPES.get(seal.kind, 1),
        name=name,
        signer_certificates=[seal.certificate_der],
        created=seal.created_at,
        valid_start=seal.not_before,
        valid_end=seal.not_after,
        # An official seal (公章) shows no seal name, as its PDF appearance does.
        picture_png=draw_seal_png(
            department.name, "" if kind is SealKind.OFFICIAL else kind.chinese_name
        ),
        picture_mm=(SEAL_SIZE_MM, SEAL_SIZE_MM),
    )
    session.add(SealSES(seal_id=seal.id, der=der, created_at=seal.created_at))
    return der


def get_seal_data(session: Session, seal: Seal) -> bytes:
    """The SESeal DER of ``seal``; an error when it has none (seals other than SM2)."""
    row = session.get(SealSES, seal.id)
    if row is None:
        raise NotFoundError(f"Seal {seal.id!r} has no GB/T 38540 seal data (only SM2 seals do).")
    return row.der


def seal_data_of_department(session: Session, *, seal_id: str, department_code: str) -> bytes:
    """The SESeal DER of the seal ``seal_id`` if the department ``department_code`` owns it.

    Another department's seal is answered as missing, so that its existence is not told.
    """
    seal = session.get(Seal, seal_id)
    if seal is None or seal.department.code != department_code:
        raise NotFoundError(f"No seal {seal_id!r} for this department.")
    return get_seal_data(session, seal)
