"""``econtract ses verify``: what it prints and its exit status."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from econtract.cli import EXIT_USAGE, run
from tests.econtract.ses.samples import OFDRW_SAMPLES, flip, load_sample, our_seal


def _verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, *extra: str
) -> tuple[int, str, str]:
    path = tmp_path / "input.esl"
    path.write_bytes(data)
    capsys.readouterr()
    status = run(["ses", "verify", str(path), *extra])
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.mark.parametrize("name", sorted(OFDRW_SAMPLES))
def test_ofdrw_samples_exit_0(
    name: str, cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _verify(tmp_path, capsys, load_sample(name))
    assert status == 0
    kind, version = OFDRW_SAMPLES[name]
    assert out.splitlines()[0] == f"类型 Structure: {kind} v{version}"
    assert "印章名称 Seal name: OFD" in out
    # No local service is set up here: the chain is said to be unchecked.
    assert "证书链 Chain: 未核验（无 SM2 根） not checked (no SM2 root given)" in out
    assert out.splitlines()[-1] == "结论 Verdict: 已验证 VERIFIED"


def test_a_tampered_byte_exits_1(
    cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _verify(tmp_path, capsys, flip(load_sample("ofdrw-UserV4.esl"), 5000))
    assert status == 1
    assert "问题 Problem: 制章者签名无效。" in out
    assert out.splitlines()[-1] == "结论 Verdict: 未通过 NOT VERIFIED"


@pytest.mark.parametrize("data", [b"", b"not seal data", b"%PDF-1.7\n"])
def test_garbage_exits_64_in_one_line(
    data: bytes, cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _verify(tmp_path, capsys, data)
    assert status == EXIT_USAGE
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "Not a readable SES_Seal or SES_Signature" in err


def test_a_missing_file_exits_64(
    cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["ses", "verify", str(tmp_path / "absent.esl")]) == EXIT_USAGE
    assert "Cannot read" in capsys.readouterr().err


def test_a_trust_root_checks_the_chain(
    cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seal = our_seal()
    roots = []
    for i, der in enumerate(seal.anchors):
        roots += ["--trust-root", str(tmp_path / f"ca{i}.pem")]
        cert = x509.load_der_x509_certificate(der)
        (tmp_path / f"ca{i}.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    status, out, _ = _verify(tmp_path, capsys, seal.der, *roots)
    assert status == 0
    assert "制章者证书链 seal maker chain: 至本服务 SM2 根 to the service's SM2 root" in out
    assert "not checked" not in out
