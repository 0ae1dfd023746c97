"""A serving worker's warm-up draws what its first licence would, and needs nothing else."""

from __future__ import annotations

from reportlab.pdfbase import pdfmetrics

from econtract.issuance import warm_up
from econtract.issuance._draw import FONT_NAME


def test_warm_up_draws_without_registry_or_keys() -> None:
    # No settings, database or key store exist here: the warm-up only draws.
    warm_up()
    assert FONT_NAME in pdfmetrics.getRegisteredFontNames()
