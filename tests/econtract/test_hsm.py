"""The whole service on a PKCS#11 token (SoftHSM2): no private key ever touches the disk."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from sqlalchemy import select

from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.config import Settings
from econtract.db import make_engine
from econtract.models import Authority
from tests.keys.softhsm import SOFTHSM2_MODULE, init_softhsm_token
from tests.signing.sealing import make_pdf

ECONTRACT = str(Path(sys.executable).with_name("econtract"))
PIN = "5678"


@pytest.fixture
def hsm_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """Environment for a CLI process that keeps every key on a fresh SoftHSM2 token."""
    env = init_softhsm_token(tmp_path, "econtract-e2e", PIN)
    return {
        **os.environ,
        **env,
        "ECONTRACT_DATA_DIR": str(settings.data_dir),
        "ECONTRACT_DATABASE_URL": settings.effective_database_url,
        "ECONTRACT_KEY_STORE": "pkcs11",
        "ECONTRACT_PKCS11_MODULE": str(SOFTHSM2_MODULE),
        "ECONTRACT_PKCS11_TOKEN": "econtract-e2e",
        "ECONTRACT_PKCS11_PIN": PIN,
    }


def econtract(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [ECONTRACT, *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_init_and_seals_on_the_token(hsm_env: dict[str, str], settings: Settings) -> None:
    report = econtract(hsm_env, "init")
    assert len(report["authorities_created"]) == 7
    assert len(report["seals_created"]) == 2
    seal = econtract(
        hsm_env,
        "seals",
        "create",
        "--department",
        DEMO_DEPARTMENT_CODE,
        "--kind",
        "contract",
        "--algorithm",
        "rsa-3072",
    )
    rotated = econtract(hsm_env, "seals", "rotate", seal["id"])
    assert rotated["replaces"] == seal["id"]
    keys_dir = settings.data_dir / "keys"
    assert not keys_dir.exists() or not any(keys_dir.iterdir())


def test_missing_token_is_one_line(hsm_env: dict[str, str]) -> None:
    env = {**hsm_env, "ECONTRACT_PKCS11_TOKEN": "no-such-token"}
    done = subprocess.run(
        [ECONTRACT, "init"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "no-such-token" in done.stderr


def test_wrong_pin_is_one_line(hsm_env: dict[str, str]) -> None:
    env = {**hsm_env, "ECONTRACT_PKCS11_PIN": "0000"}
    done = subprocess.run(
        [ECONTRACT, "init"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "PIN" in done.stderr.upper()


def test_seal_with_a_key_on_the_token(
    hsm_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    econtract(hsm_env, "init")
    [seal] = [s for s in econtract(hsm_env, "seals", "list") if s["kind"] == "licence"]
    source = tmp_path / "in.pdf"
    source.write_bytes(make_pdf())
    out = tmp_path / "out.pdf"
    econtract(
        hsm_env,
        "seal",
        str(source),
        "-o",
        str(out),
        "--seal",
        seal["id"],
        "--level",
        "B-LTA",
        "--visible",
        "1:450,150",
    )
    reader = PdfFileReader(io.BytesIO(out.read_bytes()))
    [signature] = reader.embedded_regular_signatures
    # The trust anchor comes from the registry, never from the file being checked.
    engine = make_engine(settings.effective_database_url)
    with engine.connect() as conn:
        root_der = conn.execute(
            select(Authority.certificate_der).where(Authority.name == "root")
        ).scalar_one()
    engine.dispose()
    vc = DocumentSecurityStore.read_dss(reader).as_validation_context(
        {
            "trust_roots": [asn1_x509.Certificate.load(root_der)],
            "allow_fetching": False,
            "revocation_mode": "hard-fail",
        }
    )
    status = validate_pdf_signature(signature, vc, ts_validation_context=vc)
    assert status.intact
    assert status.valid
    assert status.trusted
    assert len(reader.embedded_timestamp_signatures) == 1


def test_an_enterprises_seal_key_is_made_on_the_token(
    hsm_env: dict[str, str], settings: Settings
) -> None:
    econtract(hsm_env, "init")
    code = "9133100015J1YG617W"
    econtract(hsm_env, "enterprises", "add", "--code", code, "--name", "台州瑞丰科技有限公司")
    seal = econtract(hsm_env, "seals", "create", "--enterprise", code, "--kind", "official")
    assert [s["id"] for s in econtract(hsm_env, "seals", "list", "--department", code)] == [
        seal["id"]
    ]
    # No key file anywhere: the enterprise's key, like every other, is on the token.
    keys_dir = settings.data_dir / "keys"
    assert not keys_dir.exists() or not any(keys_dir.iterdir())
