"""Key files at rest: PKCS#8 PBES2 with OWASP's PBKDF2 count, and ``econtract keys rewrap``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from econtract.cli import run
from econtract.config import Settings, get_settings
from keys.config import KDF_ROUNDS
from keys.errors import KeyStoreError
from keys.filestore import FileKeyStore, KeyFileParameters, pbes2_parameters
from keys.handles import KeyAlgorithm
from keys.store import KeyStoreConfig
from tests.keys.openssl import openssl

PASSPHRASE = "old-passphrase-0123"
NEW_PASSPHRASE = "new-passphrase-4567"


def _store(directory: Path, passphrase: str | None = PASSPHRASE) -> FileKeyStore:
    return FileKeyStore.open(KeyStoreConfig(directory=directory, passphrase=passphrase))


def _asn1parse(path: Path) -> str:
    return openssl("asn1parse", "-in", path).stdout


def _iteration_count(dump: str) -> int:
    # PBKDF2-params: the salt, then the iteration count, which asn1parse prints in hex.
    match = re.search(r"OCTET STRING.*\n.*prim: INTEGER\s+:([0-9A-F]+)", dump)
    assert match is not None, dump
    return int(match.group(1), 16)


def _write_old_key_file(directory: Path, label: str) -> ec.EllipticCurvePrivateKey:
    """A key file as the store wrote them before: cryptography's best available encryption."""
    key = ec.generate_private_key(ec.SECP256R1())
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    (directory / f"{label}.key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )
    return key


def _same_key(a: ec.EllipticCurvePrivateKey, path: Path, passphrase: str) -> bool:
    loaded = serialization.load_pem_private_key(path.read_bytes(), passphrase.encode())
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    return loaded.private_numbers() == a.private_numbers()


def test_a_new_key_file_is_pbes2_pbkdf2_hmac_sha256_600000_rounds_aes_256_cbc(
    tmp_path: Path,
) -> None:
    _store(tmp_path).generate("seal-1", KeyAlgorithm.EC_P256)
    dump = _asn1parse(tmp_path / "seal-1.key.pem")
    for name in ("PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"):
        assert f":{name}" in dump, dump
    assert _iteration_count(dump) == 600_000 == KDF_ROUNDS


def test_an_old_key_file_has_the_weak_count_rewrap_replaces(tmp_path: Path) -> None:
    _write_old_key_file(tmp_path, "seal-1")
    assert _iteration_count(_asn1parse(tmp_path / "seal-1.key.pem")) == 2048


def test_rewrap_turns_an_old_file_into_a_current_one_holding_the_same_key(
    tmp_path: Path,
) -> None:
    key = _write_old_key_file(tmp_path, "seal-1")
    report = _store(tmp_path).rewrap()
    assert (report.changed, report.current) == (["seal-1"], [])
    path = tmp_path / "seal-1.key.pem"
    assert _iteration_count(_asn1parse(path)) == KDF_ROUNDS
    assert pbes2_parameters(path.read_bytes()) == KeyFileParameters.current(KDF_ROUNDS)
    assert _same_key(key, path, PASSPHRASE)
    assert _store(tmp_path).load("seal-1").public_key() == key.public_key()
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["seal-1.key.pem"]


def test_rewrap_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    _write_old_key_file(tmp_path, "seal-1")
    _store(tmp_path).generate("seal-2", KeyAlgorithm.EC_P256)
    assert _store(tmp_path).rewrap().changed == ["seal-1"]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    report = _store(tmp_path).rewrap()
    assert (report.changed, report.current) == ([], ["seal-1", "seal-2"])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_rewrap_with_a_new_passphrase_locks_out_the_old_one(tmp_path: Path) -> None:
    key = _write_old_key_file(tmp_path, "seal-1")
    _store(tmp_path).rewrap(new_passphrase=NEW_PASSPHRASE)
    path = tmp_path / "seal-1.key.pem"
    assert _same_key(key, path, NEW_PASSPHRASE)
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        _store(tmp_path).load("seal-1")
    # Repeating the run (as after an interruption) finds the file done.
    assert _store(tmp_path).rewrap(new_passphrase=NEW_PASSPHRASE).current == ["seal-1"]


def test_rewrap_with_the_wrong_passphrase_changes_no_file(tmp_path: Path) -> None:
    _write_old_key_file(tmp_path, "seal-1")
    before = (tmp_path / "seal-1.key.pem").read_bytes()
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        _store(tmp_path, "not-the-passphrase").rewrap()
    assert (tmp_path / "seal-1.key.pem").read_bytes() == before


def test_production_refuses_fewer_kdf_rounds_than_owasp_recommends() -> None:
    with pytest.raises(ValidationError, match="ECONTRACT_KEY_KDF_ROUNDS must be at least"):
        Settings(
            _env_file=None,
            mode="production",
            key_passphrase="a-real-passphrase-0123",
            secret_key="a-real-secret-key-0123",
            public_base_url="https://licences.example.gov.cn",
            key_kdf_rounds=2048,
        )


@pytest.fixture
def key_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI pointed at a data directory in ``tmp_path``; returns its key directory."""
    monkeypatch.setenv("ECONTRACT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("ECONTRACT_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path / "var" / "keys"
    get_settings.cache_clear()


def test_cli_keys_rewrap_reports_which_files_changed(
    key_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _write_old_key_file(key_env, "seal-1")
    assert run(["keys", "rewrap", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"key": "seal-1", "rewrapped": True}]
    assert run(["keys", "rewrap", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"key": "seal-1", "rewrapped": False}]
    assert _same_key(key, key_env / "seal-1.key.pem", PASSPHRASE)


def test_cli_keys_rewrap_takes_a_new_passphrase_from_the_environment(
    key_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _write_old_key_file(key_env, "seal-1")
    monkeypatch.setenv("ECONTRACT_NEW_KEY_PASSPHRASE", NEW_PASSPHRASE)
    assert run(["keys", "rewrap", "--new-passphrase", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"key": "seal-1", "rewrapped": True}]
    assert _same_key(key, key_env / "seal-1.key.pem", NEW_PASSPHRASE)


def test_cli_keys_rewrap_refuses_a_short_new_passphrase(
    key_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_old_key_file(key_env, "seal-1")
    before = (key_env / "seal-1.key.pem").read_bytes()
    monkeypatch.setenv("ECONTRACT_NEW_KEY_PASSPHRASE", "short")
    assert run(["keys", "rewrap", "--new-passphrase"]) == 1
    assert "too short" in capsys.readouterr().err
    assert (key_env / "seal-1.key.pem").read_bytes() == before
