"""The SM2 authorities of the service: their names, their creation by init, their loading.

The SM2 hierarchy (SM2-with-SM3 certificates) stands beside the first one of
:mod:`econtract.pki`: a root, an issuing CA that certifies SM2 seals and answers OCSP about
them itself, and a timestamp authority. Their keys live in the file key store, since PKCS#11
has no SM2 mechanism (see keys.pkcs11store); their certificates are registry rows like the
others'.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from econtract.models import Authority as AuthorityRow
from keys.ca import PKIURLs
from keys.filestore import FileKeyStore
from keys.sm2 import SM2KeyHandle
from keys.sm2ca import (
    SM2Authority,
    create_sm2_issuing_ca,
    create_sm2_root_ca,
    issue_sm2_tsa_certificate,
)
from keys.store import KeyStore

SM2_ROOT = "sm2-root"
SM2_ISSUING = "sm2-issuing"
SM2_TSA = "sm2-tsa"
#: What ``econtract init`` makes with a file key store, in this order.
SM2_AUTHORITIES = (SM2_ROOT, SM2_ISSUING, SM2_TSA)

AddRow = Callable[[str], AuthorityRow]
"""Adds the registry row of a new authority by its name, with a fresh key label."""


def bootstrap_sm2(
    key_store: FileKeyStore,
    rows: dict[str, AuthorityRow],
    add_row: AddRow,
    urls: PKIURLs,
    org: str,
) -> None:
    """Create the SM2 authorities that ``rows`` lacks, each through ``add_row``.

    A registry made before the SM2 hierarchy, or before its timestamp authority, gets what it
    lacks at its next init; the rest is left as it is.
    """

    def make(name: str) -> tuple[AuthorityRow, SM2KeyHandle]:
        row = add_row(name)
        return row, key_store.generate_sm2(row.key_label)

    if SM2_ROOT not in rows:
        row, handle = make(SM2_ROOT)
        root = create_sm2_root_ca(handle, common_name=f"{org} SM2 Root CA", organization=org)
        row.certificate_der = root.certificate.public_bytes(Encoding.DER)
    if SM2_ISSUING not in rows:
        row, handle = make(SM2_ISSUING)
        root_authority = load_sm2_root(rows, key_store)
        assert root_authority is not None
        ca = create_sm2_issuing_ca(
            root_authority,
            handle,
            ca_name=SM2_ISSUING,
            common_name=f"{org} SM2 Seal CA",
            organization=org,
            urls=urls,
            root_name=SM2_ROOT,
        )
        row.certificate_der = ca.certificate.public_bytes(Encoding.DER)
    if SM2_TSA not in rows:
        row, handle = make(SM2_TSA)
        issuing = load_sm2_issuing(rows, key_store)
        assert issuing is not None
        cert = issue_sm2_tsa_certificate(
            issuing,
            handle.public_key_info(),
            common_name=f"{org} SM2 Timestamp Authority",
            ca_name=SM2_ISSUING,
            urls=urls,
        )
        row.certificate_der = cert.public_bytes(Encoding.DER)


def _load(
    rows: dict[str, AuthorityRow],
    key_store: KeyStore,
    name: str,
    chain: tuple[x509.Certificate, ...] = (),
) -> SM2Authority | None:
    """The SM2 authority ``name`` with its key, when the registry has it and keys are files."""
    row = rows.get(name)
    if not isinstance(key_store, FileKeyStore) or row is None or row.certificate_der is None:
        return None
    return SM2Authority(
        certificate=x509.load_der_x509_certificate(row.certificate_der),
        handle=key_store.load_sm2(row.key_label),
        chain=chain,
    )


def load_sm2_root(rows: dict[str, AuthorityRow], key_store: KeyStore) -> SM2Authority | None:
    """The SM2 root CA, which signs the SM2 issuing CA's certificate and the SM2 root's CRL."""
    return _load(rows, key_store, SM2_ROOT)


def load_sm2_issuing(rows: dict[str, AuthorityRow], key_store: KeyStore) -> SM2Authority | None:
    """The SM2 issuing CA, its chain holding the SM2 root; ``None`` before both exist."""
    root = rows.get(SM2_ROOT)
    if root is None or root.certificate_der is None:
        return None
    chain = (x509.load_der_x509_certificate(root.certificate_der),)
    return _load(rows, key_store, SM2_ISSUING, chain)


def load_sm2_tsa(
    rows: dict[str, AuthorityRow], key_store: KeyStore, issuing: SM2Authority | None
) -> SM2Authority | None:
    """The SM2 timestamp authority, its chain the SM2 issuing CA and root."""
    if issuing is None:
        return None
    return _load(rows, key_store, SM2_TSA, (issuing.certificate, *issuing.chain))
