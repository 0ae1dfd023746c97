"""Distinguished names compared once per verification, not once per copy.

Certificates are matched by issuer and subject names under RFC 5280's rules, which
asn1crypto implements by parsing every attribute and preparing each value with RFC 4518
string preparation (``NameTypeAndValue._ldap_string_prep``: Unicode tables, several regular
expressions). It keeps the prepared value on the attribute object, but pyHanko copies a
signature's certificates (``untag()``, a deep copy) each time it looks for the signer among
them, three times per seal, and every copy parses and prepares its names again: comparing
the same few names (the root's, the CA's, the timestamp authority's, the seal's) over and
over was a fifth of a whole verification.

Both the comparison and the preparation depend on their inputs alone (the two names' DER
encodings; the string), so :func:`remembered_name_comparisons` remembers their results for
the duration of one verification. asn1crypto has no hook for this: ``Name.__eq__`` and
``NameTypeAndValue._ldap_string_prep`` are swapped once per process for functions that
remember only inside the block, in the thread or task that opened it; anywhere else (the
sealer, other users of asn1crypto in the process) they are the library's own. The first
comparison of each pair runs the library's code, so a name it refuses raises as before, and
a failure is never remembered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import x509 as asn1_x509

__all__ = ["remembered_name_comparisons"]


@dataclass
class _Memo:
    prepared: dict[str, str] = field(default_factory=dict)
    equal: dict[tuple[bytes, bytes], bool] = field(default_factory=dict)


_memo: ContextVar[_Memo | None] = ContextVar("econtract_name_comparisons", default=None)
_install_lock = threading.Lock()
_library_prep: Callable[[Any, str], str] = asn1_x509.NameTypeAndValue._ldap_string_prep
_library_eq: Callable[[Any, object], bool] = asn1_x509.Name.__eq__
_installed = False


def _prep(self: asn1_x509.NameTypeAndValue, string: str) -> str:
    memo = _memo.get()
    if memo is None:
        return _library_prep(self, string)
    try:
        return memo.prepared[string]
    except KeyError:
        prepared = _library_prep(self, string)
        memo.prepared[string] = prepared
        return prepared


def _eq(self: asn1_x509.Name, other: object) -> bool:
    memo = _memo.get()
    if memo is None or not isinstance(other, asn1_x509.Name):
        return _library_eq(self, other)
    key = (self.dump(), other.dump())
    try:
        return memo.equal[key]
    except KeyError:
        equal = _library_eq(self, other)
        memo.equal[key] = equal
        return equal


@contextmanager
def remembered_name_comparisons() -> Iterator[None]:
    """Within this block (in this thread or task), each distinct pair of distinguished names
    is compared once, and each distinct attribute value prepared for comparison once."""
    global _installed  # noqa: PLW0603  # installed once per process
    with _install_lock:
        if not _installed:
            asn1_x509.NameTypeAndValue._ldap_string_prep = _prep
            asn1_x509.Name.__eq__ = _eq
            _installed = True
    token = _memo.set(_Memo())
    try:
        yield
    finally:
        _memo.reset(token)
