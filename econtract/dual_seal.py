"""Sealing with an SM2 seal, alone or as a dual seal (双算法签章), and its SES_Signature.

A dual seal puts two seals of one department on a document, so that readers that know only
the international algorithms (pdfsig, Adobe Reader) and those that check the national ones
both accept it. The department's ECDSA (or RSA) seal certifies first, with "form filling and
signing allowed" (DocMDP 2) and an empty field reserved for the SM2 seal, and carries the
visible seal (and any cross-page seal); the SM2 seal then fills that field in a revision of
its own, which DocMDP 2 allows, so the certification stays intact. The other order would not
do: a certifying SM2 seal is one pdfsig cannot check, and every reader would judge the ECDSA
approval seal after it against a certification it cannot verify.

Each sealing with an SM2 seal, dual or not, also makes its GB/T 38540 ``SES_Signature``
(:mod:`econtract.ses.sealing_record`), which the caller keeps with the document's or the
licence's row.
"""

from __future__ import annotations

import dataclasses
import secrets
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.errors import InvalidInputError
from econtract.models import Seal, SealStatus
from econtract.ses.sealing_record import make_sealing_signature, seal_data_of
from keys.handles import KeyAlgorithm
from keys.tsa import TimestampAuthority
from signing.options import Certification, FieldHolder, ReservedField, SealLevel, SealOptions
from signing.sealer import FieldCheck, SealIdentity, SealingContext, SealResult, seal_pdf

__all__ = ["SM2Part", "SealPlan", "Sealed", "dual_options", "plan_seals", "seal_with_sm2"]


@dataclass(frozen=True, kw_only=True)
class SealPlan:
    """Which seals seal a document: the first (or only) one, and the SM2 one if any."""

    seal: Seal
    """The seal that signs first: the certifying seal of a dual seal, else the only one."""
    sm2_seal: Seal | None
    """The SM2 seal: ``seal`` itself when it is SM2 and alone, the approving seal of a dual
    seal, ``None`` when no SM2 seal signs."""
    seal_ses: bytes | None
    """The SM2 seal's SESeal; ``None`` without an SM2 seal or for one made without it."""
    dual: bool
    """Whether the SM2 seal approves after ``seal``."""


def plan_seals(session: Session, seal: Seal, *, dual: bool) -> SealPlan:
    """The seals that seal with ``seal`` (and, with ``dual``, its partner of the other
    family: the same department's newest active seal of the same kind)."""
    sm2_seal = seal if seal.algorithm == KeyAlgorithm.SM2 else None
    first = seal
    if dual:
        partner = _partner(session, seal)
        if sm2_seal is None:
            sm2_seal = partner
        else:
            first = partner
    seal_ses = seal_data_of(session, sm2_seal.id) if sm2_seal is not None else None
    return SealPlan(seal=first, sm2_seal=sm2_seal, seal_ses=seal_ses, dual=dual)


def _partner(session: Session, seal: Seal) -> Seal:
    sm2 = seal.algorithm == KeyAlgorithm.SM2
    family = Seal.algorithm != KeyAlgorithm.SM2 if sm2 else Seal.algorithm == KeyAlgorithm.SM2
    partner = session.scalars(
        select(Seal)
        .where(
            Seal.department_id == seal.department_id,
            Seal.kind == seal.kind,
            Seal.status == SealStatus.ACTIVE,
            family,
        )
        .order_by(Seal.created_at.desc(), Seal.id.desc())
        .limit(1)
    ).first()
    if partner is None:
        wanted = "ECDSA or RSA" if sm2 else "SM2"
        raise InvalidInputError(
            f"A dual seal needs an active {seal.kind} seal of the same department in the "
            f"other family ({wanted}) beside seal {seal.id}; there is none (econtract seals "
            "create" + (")." if sm2 else " --algorithm sm2).")
        )
    return partner


def dual_options(options: SealOptions, sm2_seal_id: str) -> tuple[SealOptions, SealOptions]:
    """The certifying seal's options and the approving SM2 seal's, from what was asked.

    An approval request becomes a certification with form filling allowed; one that forbids
    every change is refused, since it would forbid the SM2 seal.
    """
    if options.certification is Certification.NO_CHANGES:
        raise InvalidInputError(
            "A dual seal certifies with 'form-filling' so that its SM2 seal may follow; "
            "'no-changes' would forbid it."
        )
    field = f"SM2-{secrets.token_hex(4)}"
    certifying = dataclasses.replace(
        options,
        certification=Certification.FORM_FILLING,
        # The archive timestamp of B-LTA belongs after the last seal, over both.
        level=SealLevel.B_LT if options.level is SealLevel.B_LTA else options.level,
        reserve_fields=(
            *options.reserve_fields,
            ReservedField(name=field, holder=FieldHolder(seal_id=sm2_seal_id)),
        ),
    )
    approving = SealOptions(
        level=options.level,
        certification=Certification.APPROVAL,
        field_name=field,
        reason=options.reason,
        location=options.location,
    )
    return certifying, approving


@dataclass(frozen=True, kw_only=True)
class SM2Part:
    """The SM2 seal's share of a sealing."""

    identity: SealIdentity
    """The SM2 seal's signing identity."""
    seal_ses: bytes | None
    """Its SESeal, which its SES_Signature embeds; ``None``: no SES_Signature is made."""
    authority: TimestampAuthority | None
    """The SM2 timestamp authority, for the SES_Signature of a timestamped level."""
    approves: tuple[SealOptions, SealingContext] | None = None
    """For a dual seal, the SM2 seal's options and context: it approves after the first."""


@dataclass(frozen=True, kw_only=True)
class Sealed:
    """What a sealing with an SM2 seal produced."""

    result: SealResult
    """The first seal's (the certifying one of a dual seal, else the only one)."""
    sm2_result: SealResult | None
    """The SM2 seal's (``result`` itself when the SM2 seal is alone)."""
    ses_signature: bytes | None
    """The SM2 sealing's SES_Signature (DER)."""

    @property
    def last(self) -> SealResult:
        """The last seal's result, whose level the document has."""
        return self.sm2_result or self.result


def seal_with_sm2(
    source: BinaryIO,
    output: BinaryIO,
    *,
    identity: SealIdentity,
    options: SealOptions,
    context: SealingContext,
    check_field: FieldCheck | None = None,
    sm2: SM2Part | None,
) -> Sealed:
    """Seal ``source`` into ``output`` with ``identity``, then with the SM2 seal of a dual
    seal; make the SM2 sealing's SES_Signature (no transaction is open: the keys work)."""
    if sm2 is None or sm2.approves is None:
        result = seal_pdf(
            source, output, identity=identity, options=options, context=context,
            check_field=check_field,
        )  # fmt: skip
        sm2_result = result if sm2 is not None else None
    else:
        approving, approving_context = sm2.approves
        # The certified revision is read back as the SM2 seal's input; a temporary file keeps
        # a large document out of memory.
        with tempfile.TemporaryFile() as certified:
            result = seal_pdf(
                source, certified, identity=identity, options=options, context=context,
                check_field=check_field,
            )  # fmt: skip
            certified.seek(0)
            sm2_result = seal_pdf(
                certified,
                output,
                identity=sm2.identity,
                options=approving,
                context=approving_context,
            )
    ses_signature = None
    if sm2 is not None and sm2_result is not None and sm2.seal_ses is not None:
        ses_signature = make_sealing_signature(
            seal_ses=sm2.seal_ses,
            identity=sm2.identity,
            result=sm2_result,
            authority=sm2.authority if sm2_result.level.timestamped else None,
        )
    return Sealed(result=result, sm2_result=sm2_result, ses_signature=ses_signature)
