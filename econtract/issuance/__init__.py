"""Issuing e-licences: the certificate types, numbering, idempotency, the holder rule, the
printed page, the QR token and what a scan of it shows.

The rooms are private modules; this package's names are the interface:

- :func:`issue_certificate` runs the steps of an issuance in order (``_issue``: validate,
  claim the number in a short transaction, render and seal with none open, register in
  another), from an :class:`IssueRequest` (``_request``), answering an
  :class:`IdempotencyKey`'s retry with the first :class:`Issued` (``_idempotency``).
- A claimed number is issued or void, never lost (``_claims``): :class:`ClaimSweeper`
  voids the claims of issuances that died (:func:`sweep_claims`).
- :data:`TEMPLATES` are the certificate types (``_catalogue``), each a
  :class:`LicenceTemplate` whose fields :func:`validate_fields` checks (``_templates``).
- :func:`render_licence` draws a :class:`LicenceContent` in a :class:`LicenceStyle`
  (``_layout``, ``_draw``).
- :func:`effective_status` is the status a person sees (``_status``, which also keeps one
  valid licence per holder).
- :func:`make_qr_token` and :func:`read_qr_token` make and read the QR code's token
  (``_qrtoken``); :func:`check_qr` is what a scan shows (``_qrcheck``).
- :func:`warm_up` pays, before a serving process's first request, what its first licence
  would (``_warmup``).
"""

from __future__ import annotations

from econtract.issuance._catalogue import TEMPLATES, ensure_certificate_types, get_template
from econtract.issuance._claims import ClaimSweeper, sweep_claims
from econtract.issuance._draw import FORMAT_VERSION, render_licence
from econtract.issuance._idempotency import IdempotencyKey, Issued, request_hash
from econtract.issuance._issue import certificate_payload, issue_certificate
from econtract.issuance._layout import LicenceContent, LicenceStyle, RenderedLicence, format_date
from econtract.issuance._qrcheck import QRCheck, check_qr, mask
from econtract.issuance._qrtoken import (
    QRClaims,
    fields_digest,
    make_jws_qr_token,
    make_qr_token,
    read_qr_token,
)
from econtract.issuance._request import IssueRequest
from econtract.issuance._status import EffectiveStatus, effective_status
from econtract.issuance._templates import (
    ID_NUMBER_PATTERN,
    FormRow,
    LicenceTemplate,
    is_valid_id_number,
    validate_fields,
)
from econtract.issuance._warmup import warm_up
from signing.fonts import check_font

__all__ = [
    "FORMAT_VERSION",
    "ID_NUMBER_PATTERN",
    "TEMPLATES",
    "ClaimSweeper",
    "EffectiveStatus",
    "FormRow",
    "IdempotencyKey",
    "IssueRequest",
    "Issued",
    "LicenceContent",
    "LicenceStyle",
    "LicenceTemplate",
    "QRCheck",
    "QRClaims",
    "RenderedLicence",
    "certificate_payload",
    "check_font",
    "check_qr",
    "effective_status",
    "ensure_certificate_types",
    "fields_digest",
    "format_date",
    "get_template",
    "is_valid_id_number",
    "issue_certificate",
    "make_jws_qr_token",
    "make_qr_token",
    "mask",
    "read_qr_token",
    "render_licence",
    "request_hash",
    "sweep_claims",
    "validate_fields",
    "warm_up",
]
