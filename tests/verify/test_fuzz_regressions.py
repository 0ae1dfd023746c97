"""Inputs the upload fuzzer (``make fuzz``) found to escape as defects, kept as regressions:
each must end in a verdict on the file, never in an unexpected exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from verify.errors import MalformedPDFError
from verify.pdf import verify_pdf
from verify.policy import VerificationPolicy

CRASHES = Path(__file__).resolve().parents[2] / "fuzz" / "crashes"


def test_a_number_that_is_not_a_decimal_makes_the_file_unreadable_not_a_defect(
    policy: VerificationPolicy,
) -> None:
    data = (CRASHES / "decimal-number.pdf").read_bytes()
    with pytest.raises(MalformedPDFError, match="cannot be read"):
        verify_pdf(data, policy=policy)
