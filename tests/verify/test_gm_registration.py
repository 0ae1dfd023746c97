"""The GM/T 0010 content types join asn1crypto's names whatever was built before them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# asn1crypto builds a class's name table once, on its first instance: a content type made
# before verify/ is imported must not leave the names unusable afterwards.
_SCRIPT = """
from asn1crypto import cms
cms.ContentType("signed_data")
import verify._cms_containers
assert cms.ContentType("data").dotted == "1.2.840.113549.1.7.1"
assert cms.ContentType("gm_signed_data").dotted == "1.2.156.10197.6.1.4.2.2"
attribute = cms.CMSAttribute({"type": "content_type", "values": ["gm_data"]})
assert cms.CMSAttribute.load(attribute.dump())["values"][0].dotted == "1.2.156.10197.6.1.4.2.1"
print("ok")
"""


def test_names_work_when_asn1crypto_built_its_table_before_verify_was_imported() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
