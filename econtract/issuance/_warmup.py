"""What a serving process does once, before its first request, that its first licence would
otherwise pay for: about a second of CPU, most of it in the first request's latency.

A licence of every template is drawn (ReportLab parses the project font, about 0.2 s, and
each template's page is laid out once), and a seal's round stamp is drawn for an appearance
no department has (fontTools' subsetter, imported and run the first time, about 0.7 s). Nothing
is written, signed or numbered: no key is used and the registry is not touched.
"""

from __future__ import annotations

from datetime import UTC, datetime

from econtract.issuance._catalogue import TEMPLATES
from econtract.issuance._draw import render_licence
from econtract.issuance._layout import LicenceContent
from signing.appearance import SealAppearance, seal_stamp_style

# A URL as long as a real verification URL (a signed token of ~330 characters), so that the
# QR code drawn is of a licence's size.
_URL = "https://example.invalid/v/" + "x" * 330
_NUMBER = "WARMUP" + "0" * 12


def warm_up() -> None:
    """Draw a licence of each template and one seal stamp, and throw them away."""
    now = datetime.now(UTC)
    today = now.date()
    for template in TEMPLATES.values():
        fields = template.example
        render_licence(
            LicenceContent(
                template=template,
                fields=fields,
                number=_NUMBER,
                department_name="杭州市市场监督管理局",
                issued_on=today,
                issued_at=now,
                valid_from=today,
                valid_until=template.valid_until(fields, today),
                verify_url=_URL,
            )
        )
    seal_stamp_style(
        SealAppearance(department_name="示例市市场监督管理局", seal_name="证照专用章", code="0")
    )
