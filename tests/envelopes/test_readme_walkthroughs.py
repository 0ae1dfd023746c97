"""The README's envelope walkthroughs work as written: the contract with two enterprises and
the parallel approval case, run by bash with the real command line, curl and jq against a
live server on the test's registry."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from econtract.config import Settings
from econtract.envelopes import Envelope, EnvelopeStatus
from econtract.models import Certificate
from econtract.services import Services
from tests.live import serve
from tests.signing.sealing import make_pdf

pytestmark = [pytest.mark.registry, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"
DOCUMENTED_URL = "http://127.0.0.1:8000"


def walkthrough(name: str) -> str:
    """The shell block the README marks ``<!-- walkthrough: name -->``."""
    text = README.read_text(encoding="utf-8")
    found = re.search(
        rf"<!-- walkthrough: {re.escape(name)} -->\n```sh\n(.*?)\n```", text, flags=re.DOTALL
    )
    assert found is not None, f"the README has no walkthrough {name!r}"
    return found.group(1)


def cli_environment(settings: Settings) -> dict[str, str]:
    """The environment of an operator's shell on this registry: the command line on the PATH,
    pointed at the test's data directory and database."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ECONTRACT_DATA_DIR": str(settings.data_dir),
        "ECONTRACT_DATABASE_URL": settings.effective_database_url,
        "ECONTRACT_KEY_PASSPHRASE": "test-passphrase-0123",
        "ECONTRACT_KEY_KDF_ROUNDS": str(settings.key_kdf_rounds),
    }


def test_the_envelope_walkthroughs_work_as_written(initialised: Services, tmp_path: Path) -> None:
    workdir = tmp_path / "shell"
    workdir.mkdir()
    (workdir / "contract.pdf").write_bytes(make_pdf(text="Government procurement contract"))
    (workdir / "application.pdf").write_bytes(make_pdf(text="Project application form"))
    script = "\n".join(
        ["set -euo pipefail", walkthrough("contract"), walkthrough("parallel approval")]
    )
    with serve(initialised.settings) as url:
        done = subprocess.run(
            ["bash", "-c", script.replace(DOCUMENTED_URL, url)],
            check=False,
            cwd=workdir,
            env=cli_environment(initialised.settings),
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()

    progress = [line for line in lines if "parties have sealed" in line]
    expected = [f"{n} of 3 parties have sealed" for n in (1, 2, 3)]
    assert progress == expected + expected, done.stdout

    # pdfsig on the contract: the certification and the three parties' seals, each valid,
    # and the document timestamp of the completion (which pdfsig lists but does not check).
    signatures = re.findall(r"^Signature #(\d+):", done.stdout, flags=re.MULTILINE)
    assert len(signatures) >= 5, done.stdout
    timestamps = done.stdout.count("Signature Field Name: DocTimeStamp-")
    assert timestamps == 1, done.stdout
    valid = done.stdout.count("Signature Validation: Signature is Valid.")
    assert valid == len(signatures) - timestamps, done.stdout

    # The parallel case's licence and parties as the last command lists them.
    licence_id = lines[-4]
    parties = [line.split(" ")[:3] for line in lines[-3:]]
    assert parties == [
        ["1", "国家税务总局杭州市税务局", "sealed"],
        ["1", "杭州市人力资源和社会保障局", "sealed"],
        ["2", "杭州市市场监督管理局", "sealed"],
    ], done.stdout

    with initialised.sessions() as session:
        envelopes = session.scalars(select(Envelope).order_by(Envelope.created_at)).all()
        assert [(e.title, e.status, e.licence_id) for e in envelopes] == [
            ("政府采购合同", EnvelopeStatus.COMPLETED, None),
            ("企业开办一件事", EnvelopeStatus.COMPLETED, licence_id),
        ]
        licence = session.get(Certificate, licence_id)
        assert licence is not None
        assert (licence.type_code, licence.holder_code) == (
            "business_licence",
            "913302000937LLJ16T",
        )
