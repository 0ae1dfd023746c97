"""An envelope's account from the file: the parties whose fields it reserves, in the file's
order, and whether each has sealed, with its own seal.

A field belongs to an envelope's account when a seal reserved it for a party: a signature
field whose seed value (``/SV``) constrains the signer's subject to the organizationIdentifier
``NTRCN-<credit code>`` (``signing.preparation``). The steps, in order:

1. every signature field of every revision a seal signed, in the file's order (first the
   fields of the earliest such revision), each with its binding as that revision says it: a
   field added after the last seal is signed by no one and not believed, a later change of a
   seed value does not move the binding, and a field removed later is still a party's;
2. for each, the seal in it, if any: who sealed (the certificate's organisation and
   organizationIdentifier), when, and whether that is the party the field was bound to.

Only the file is read: never a key, never the network. The registry may add the envelope's
record afterwards (:func:`with_record`), but the account stands without it, for a court has
only the file. What the account means for the verdict is :mod:`verify.verdict`'s to decide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import misc
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields

from keys.names import ORG_ID_PREFIX
from verify.report import (
    EnvelopeCounts,
    EnvelopeRecord,
    EnvelopeReport,
    PartyReport,
    Progress,
    SignatureReport,
)
from verify.words import ENVELOPE_WORDS

__all__ = [
    "EnvelopeRegistry",
    "RegisteredEnvelope",
    "envelope_facts",
    "progress_of",
    "read_envelope",
    "with_record",
]

# A damaged field or seed value leaves that field out of the account: the seals themselves
# are judged by their own checks, and a field that cannot be read binds no one.
_READ_ERRORS = (misc.PdfError, ValueError, KeyError, TypeError, AttributeError, IndexError)


@dataclass(frozen=True, kw_only=True)
class RegisteredEnvelope:
    """What the registry knows of an envelope: its record, and each party by its field."""

    record: EnvelopeRecord
    """The envelope's id, title and status."""
    parties: Mapping[str, tuple[int, str]]
    """Per field name, the party's step and name."""


@runtime_checkable
class EnvelopeRegistry(Protocol):
    """A registry view that also knows envelopes (optional: the account stands without it)."""

    def envelope_of(self, record_id: str) -> RegisteredEnvelope | None:
        """The envelope whose document revision, or whose certified document, is the sealed
        document ``record_id``; ``None`` when it is no envelope's."""
        ...


def read_envelope(
    reader: PdfFileReader,
    signatures: tuple[SignatureReport, ...],
    *,
    sealed_revisions: Iterable[int],
) -> EnvelopeReport | None:
    """The account of the parties whose fields the file reserves, or ``None`` when it reserves
    none. ``sealed_revisions``: the revisions the file's seals signed."""
    seals = {s.field_name: s for s in signatures if s.kind == "seal"}
    bound: dict[str, str] = {}
    for revision in sorted(set(sealed_revisions)):
        for name, code in _bound_fields(reader, revision):
            bound.setdefault(name, code)
    if not bound:
        return None
    return _account(tuple(_party(name, code, seals.get(name)) for name, code in bound.items()))


def progress_of(sealed: int, parties: int) -> Progress:
    """How far an envelope is, in words: ``3 方中已有 2 方签章`` / ``2 of 3 parties have
    sealed``."""
    return Progress(
        zh=f"{parties} 方中已有 {sealed} 方签章",
        en=f"{sealed} of {parties} {'party has' if parties == 1 else 'parties have'} sealed",
    )


def with_record(envelope: EnvelopeReport, registered: RegisteredEnvelope) -> EnvelopeReport:
    """The account with the registry's record: the envelope's id, title and status, and each
    party's step and name. What the file says of the seals is kept as it is."""
    parties = tuple(
        dataclasses.replace(party, step=known[0], name=known[1])
        if (known := registered.parties.get(party.field)) is not None
        else party
        for party in envelope.parties
    )
    return dataclasses.replace(envelope, parties=parties, record=registered.record)


def envelope_facts(envelope: EnvelopeReport) -> tuple[tuple[str, str], ...]:
    """The section as label and value pairs in plain text, progress first, then each party in
    order: what the HTML and PDF reports and the command line show."""
    words = ENVELOPE_WORDS
    rows: list[tuple[str, str]] = []
    if envelope.record is not None:
        record = envelope.record
        rows.append((words["record"].both, f"{record.title} ({record.id}, {record.status})"))
    rows.append((words["progress"].both, f"{envelope.progress.zh} / {envelope.progress.en}"))
    for number, party in enumerate(envelope.parties, 1):
        step = f", 第 {party.step} 步 step {party.step}" if party.step is not None else ""
        who = f"{party.name} ({party.code})" if party.name else party.code
        rows.append((f"{words['party'].zh} {number} {words['party'].en} {number}", who))
        rows.append((words["field"].both, f"{party.field}{step}"))
        if party.status == "unsealed":
            rows.append((words["state"].both, words["unsealed"].both))
            continue
        when = party.sealed_at.isoformat(timespec="seconds") if party.sealed_at else "-"
        state = words["sealed"].both if party.signer_is_party else words["wrong_party"].both
        rows.append((words["state"].both, f"{state}, {when}"))
        rows.append(
            (words["signer"].both, f"{party.signer_name or '-'} ({party.signer_code or '-'})")
        )
    return tuple(rows)


def _account(parties: tuple[PartyReport, ...]) -> EnvelopeReport:
    sealed = sum(p.status == "sealed" for p in parties)
    return EnvelopeReport(
        parties=parties,
        counts=EnvelopeCounts(sealed=sealed, parties=len(parties)),
        complete=sealed == len(parties),
        progress=progress_of(sealed, len(parties)),
    )


def _party(name: str, code: str, seal: SignatureReport | None) -> PartyReport:
    if seal is None:
        return PartyReport(
            field=name,
            code=code,
            name=None,
            step=None,
            status="unsealed",
            sealed_at=None,
            signer_name=None,
            signer_code=None,
            signer_is_party=None,
        )
    signer = seal.signer
    signer_code = signer.department_code if signer else None
    signer_name = (signer.department_name or signer.common_name) if signer else None
    return PartyReport(
        field=name,
        code=code,
        name=signer_name if signer_code == code else None,
        step=None,
        status="sealed",
        sealed_at=seal.timestamp.time if seal.timestamp is not None else seal.signing_time,
        signer_name=signer_name,
        signer_code=signer_code,
        signer_is_party=signer_code == code,
    )


def _bound_fields(reader: PdfFileReader, revision: int) -> list[tuple[str, str]]:
    """The signature fields of ``revision`` bound to a party, with the party's credit code,
    read as that revision has them."""
    out: list[tuple[str, str]] = []
    try:
        found = list(fields.enumerate_sig_fields(reader.get_historical_resolver(revision)))
    except _READ_ERRORS:
        return out
    for name, _, field_ref in found:
        try:
            seed = field_ref.get_object().get("/SV")
            if seed is None:
                continue
            spec = fields.SigSeedValueSpec.from_pdf_object(seed.get_object())  # type: ignore[no-untyped-call]
        except _READ_ERRORS:
            continue
        constraints = spec.cert
        if constraints is None or constraints.subject_dn is None:
            continue
        code = _organization_code(constraints.subject_dn)
        if code is not None:
            out.append((str(name), code))
    return out


def _organization_code(name: asn1_x509.Name) -> str | None:
    for rdn in name.chosen:
        for attribute in rdn:
            if attribute["type"].native != "organization_identifier":
                continue
            value = str(attribute["value"].native)
            if value.startswith(ORG_ID_PREFIX):
                return value[len(ORG_ID_PREFIX) :]
    return None
