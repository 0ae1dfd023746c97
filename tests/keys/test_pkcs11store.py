"""The PKCS#11 key store, against a real SoftHSM2 token."""

from __future__ import annotations

import dataclasses
import multiprocessing
import pickle
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from keys.errors import KeyNotFoundError, KeyStoreError
from keys.handles import KeyAlgorithm, KeyHandle
from keys.pkcs11store import PKCS11KeyStore
from keys.store import KeyStoreConfig, open_key_store
from tests.keys.conftest import SPARE_TOKEN_LABEL


def _verify(handle: KeyHandle, signature: bytes, data: bytes, digest: hashes.HashAlgorithm) -> None:
    public = handle.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, data, padding.PKCS1v15(), digest)
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, data, ec.ECDSA(digest))


@pytest.mark.parametrize("algorithm", [a for a in KeyAlgorithm if a is not KeyAlgorithm.SM2])
def test_generate_load_and_sign(softhsm_config: KeyStoreConfig, algorithm: KeyAlgorithm) -> None:
    store = PKCS11KeyStore.open(softhsm_config)
    label = f"gen-{algorithm.value}"
    handle = store.generate(label, algorithm)
    assert handle.algorithm is algorithm
    loaded = PKCS11KeyStore.open(softhsm_config).load(label)
    assert loaded.public_key() == handle.public_key()
    for name, digest in [("sha256", hashes.SHA256()), ("sha384", hashes.SHA384())]:
        _verify(handle, loaded.sign(b"payload", name), b"payload", digest)


def test_rsa_public_exponent_is_65537(softhsm_config: KeyStoreConfig) -> None:
    handle = PKCS11KeyStore.open(softhsm_config).generate("rsa-e", KeyAlgorithm.RSA_2048)
    public = handle.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers().e == 65537


def test_private_key_is_sensitive_and_not_extractable(softhsm_config: KeyStoreConfig) -> None:
    import pkcs11  # noqa: PLC0415 (only this test inspects the token directly)

    store = PKCS11KeyStore.open(softhsm_config)
    store.generate("locked", KeyAlgorithm.EC_P256)
    attrs = {
        pkcs11.Attribute.LABEL: "locked",
        pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
    }

    def inspect(session: object) -> tuple[bool, bool, bool]:
        key = next(session.get_objects(attrs))  # type: ignore[attr-defined]
        return (
            key[pkcs11.Attribute.SENSITIVE],
            key[pkcs11.Attribute.EXTRACTABLE],
            key[pkcs11.Attribute.TOKEN],
        )

    assert store._token().run(inspect) == (True, False, True)


def test_handles_are_cached_per_label(softhsm_config: KeyStoreConfig) -> None:
    store = PKCS11KeyStore.open(softhsm_config)
    store.generate("cached", KeyAlgorithm.EC_P256)
    other = PKCS11KeyStore.open(softhsm_config)
    assert other.load("cached") is other.load("cached")


def test_duplicate_label_is_refused(softhsm_config: KeyStoreConfig) -> None:
    store = PKCS11KeyStore.open(softhsm_config)
    store.generate("twice", KeyAlgorithm.EC_P256)
    with pytest.raises(KeyStoreError, match="'twice' already exists"):
        store.generate("twice", KeyAlgorithm.EC_P384)


def test_missing_key_is_key_not_found(softhsm_config: KeyStoreConfig) -> None:
    with pytest.raises(KeyNotFoundError, match="'absent'"):
        PKCS11KeyStore.open(softhsm_config).load("absent")


def test_exists(softhsm_config: KeyStoreConfig) -> None:
    store = PKCS11KeyStore.open(softhsm_config)
    store.generate("present", KeyAlgorithm.EC_P256)
    assert store.exists("present")
    assert not store.exists("absent")


def test_check_passes_on_a_logged_in_token(softhsm_config: KeyStoreConfig) -> None:
    PKCS11KeyStore.open(softhsm_config).check()


def test_missing_token_names_the_label(softhsm_config: KeyStoreConfig) -> None:
    config = dataclasses.replace(softhsm_config, pkcs11_token_label="no-such-token")
    with pytest.raises(KeyStoreError, match="'no-such-token'"):
        PKCS11KeyStore.open(config)


def test_missing_module_names_the_path(softhsm_config: KeyStoreConfig) -> None:
    config = dataclasses.replace(softhsm_config, pkcs11_module=Path("/nonexistent/libp11.so"))
    with pytest.raises(KeyStoreError, match=r"/nonexistent/libp11\.so"):
        PKCS11KeyStore.open(config)


def test_wrong_pin_is_refused_by_the_token(softhsm_config: KeyStoreConfig) -> None:
    # The spare token is never logged in, so the PIN goes to C_Login.
    config = dataclasses.replace(
        softhsm_config, pkcs11_token_label=SPARE_TOKEN_LABEL, pkcs11_user_pin="0000"
    )
    with pytest.raises(KeyStoreError, match=f"Wrong user PIN .*'{SPARE_TOKEN_LABEL}'"):
        PKCS11KeyStore.open(config)


def test_wrong_pin_is_refused_while_the_token_is_logged_in(
    softhsm_config: KeyStoreConfig,
) -> None:
    PKCS11KeyStore.open(softhsm_config)
    config = dataclasses.replace(softhsm_config, pkcs11_user_pin="0000")
    with pytest.raises(KeyStoreError, match="Wrong user PIN"):
        PKCS11KeyStore.open(config)


def test_open_key_store_opens_the_pkcs11_backend(softhsm_config: KeyStoreConfig) -> None:
    assert isinstance(open_key_store(softhsm_config), PKCS11KeyStore)


def _sign_in_child(store: PKCS11KeyStore, label: str, queue: multiprocessing.Queue[bytes]) -> None:
    queue.put(store.load(label).sign(b"from the child"))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_child_process_signs_with_its_own_session(
    softhsm_config: KeyStoreConfig, method: str
) -> None:
    store = PKCS11KeyStore.open(softhsm_config)
    label = f"child-{method}"
    handle = store.generate(label, KeyAlgorithm.EC_P256)
    context: Any = multiprocessing.get_context(method)
    queue: multiprocessing.Queue[bytes] = context.Queue()
    child = context.Process(target=_sign_in_child, args=(store, label, queue))
    child.start()
    signature = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    _verify(handle, signature, b"from the child", hashes.SHA256())
    # The parent's session survives the child's re-initialisation of the module.
    _verify(handle, handle.sign(b"parent"), b"parent", hashes.SHA256())


def test_store_pickles_without_its_session(softhsm_config: KeyStoreConfig) -> None:
    store = PKCS11KeyStore.open(softhsm_config)
    store.generate("pickled", KeyAlgorithm.EC_P256)
    copy = pickle.loads(pickle.dumps(store))
    assert copy.load("pickled").public_key() == store.load("pickled").public_key()


def test_threads_share_the_session_safely(softhsm_config: KeyStoreConfig) -> None:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    handle = PKCS11KeyStore.open(softhsm_config).generate("threads", KeyAlgorithm.EC_P256)
    messages = [f"message {i}".encode() for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        signatures = list(pool.map(handle.sign, messages))
    for message, signature in zip(messages, signatures, strict=True):
        _verify(handle, signature, message, hashes.SHA256())
