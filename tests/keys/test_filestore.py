"""The encrypted file key store."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from keys.errors import KeyNotFoundError, KeyStoreError
from keys.filestore import FileKeyStore
from keys.handles import KeyAlgorithm
from keys.store import KeyStoreConfig, open_key_store


def _store(
    directory: Path, passphrase: str | None = "s3cret", *, require: bool = False
) -> FileKeyStore:
    config = KeyStoreConfig(directory=directory, passphrase=passphrase, require_encryption=require)
    return FileKeyStore.open(config)


def test_generate_writes_encrypted_pkcs8_with_mode_0600(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.generate("seal-1", KeyAlgorithm.EC_P256)
    path = tmp_path / "seal-1.key.pem"
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["seal-1.key.pem"]


def test_load_in_a_new_store_signs_with_the_same_key(tmp_path: Path) -> None:
    handle = _store(tmp_path).generate("seal-1", KeyAlgorithm.EC_P384)
    loaded = _store(tmp_path).load("seal-1")
    signature = loaded.sign(b"data", "sha384")
    public = handle.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, b"data", ec.ECDSA(hashes.SHA384()))
    assert loaded.algorithm is KeyAlgorithm.EC_P384


def test_load_returns_the_cached_handle(tmp_path: Path) -> None:
    _store(tmp_path).generate("seal-1", KeyAlgorithm.EC_P256)
    store = _store(tmp_path)
    assert store.load("seal-1") is store.load("seal-1")


def test_generate_refuses_an_existing_label(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.generate("seal-1", KeyAlgorithm.EC_P256)
    before = (tmp_path / "seal-1.key.pem").read_bytes()
    with pytest.raises(KeyStoreError, match="already exists"):
        _store(tmp_path).generate("seal-1", KeyAlgorithm.EC_P256)
    assert (tmp_path / "seal-1.key.pem").read_bytes() == before


def test_missing_key_is_key_not_found(tmp_path: Path) -> None:
    with pytest.raises(KeyNotFoundError, match="'nope'"):
        _store(tmp_path).load("nope")


def test_exists(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.generate("seal-1", KeyAlgorithm.EC_P256)
    assert store.exists("seal-1")
    assert not store.exists("seal-2")


@pytest.mark.parametrize("label", ["../evil", "a/b", ".hidden", "", "UPPER", "x" * 129, "a\x00b"])
def test_invalid_labels_are_refused(tmp_path: Path, label: str) -> None:
    with pytest.raises(KeyStoreError, match="Invalid key label"):
        _store(tmp_path).generate(label, KeyAlgorithm.EC_P256)


def test_production_mode_without_passphrase_is_refused_at_open(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="ECONTRACT_KEY_PASSPHRASE"):
        _store(tmp_path, None, require=True)


def test_production_mode_refuses_an_unencrypted_key_file(tmp_path: Path) -> None:
    _store(tmp_path, None).generate("dev", KeyAlgorithm.EC_P256)
    assert b"BEGIN PRIVATE KEY" in (tmp_path / "dev.key.pem").read_bytes()
    with pytest.raises(KeyStoreError, match="'dev' is stored unencrypted"):
        _store(tmp_path, "s3cret", require=True).load("dev")


def test_wrong_passphrase_names_the_label(tmp_path: Path) -> None:
    _store(tmp_path, "right").generate("seal-1", KeyAlgorithm.EC_P256)
    with pytest.raises(KeyStoreError, match=r"'seal-1' .*wrong passphrase"):
        _store(tmp_path, "wrong").load("seal-1")


def test_encrypted_key_without_passphrase_says_what_to_set(tmp_path: Path) -> None:
    _store(tmp_path, "right").generate("seal-1", KeyAlgorithm.EC_P256)
    with pytest.raises(KeyStoreError, match="ECONTRACT_KEY_PASSPHRASE"):
        _store(tmp_path, None).load("seal-1")


def test_check_passes_on_a_writable_directory(tmp_path: Path) -> None:
    _store(tmp_path).check()


def test_check_fails_when_the_directory_is_gone(tmp_path: Path) -> None:
    store = _store(tmp_path / "keys")
    (tmp_path / "keys").rmdir()
    with pytest.raises(KeyStoreError, match="missing"):
        store.check()


def test_open_key_store_opens_the_file_backend(tmp_path: Path) -> None:
    store = open_key_store(KeyStoreConfig(directory=tmp_path, passphrase="x"))
    assert isinstance(store, FileKeyStore)
