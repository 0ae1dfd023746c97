"""Distinguished names compared once per process, not once per copy.

Certificates are matched by issuer and subject names under RFC 5280's rules, which
asn1crypto implements by parsing every attribute and preparing each value with RFC 4518
string preparation (``NameTypeAndValue._ldap_string_prep``: Unicode tables, several regular
expressions). It keeps the prepared value on the attribute object, but pyHanko copies a
signature's certificates (``untag()``, a deep copy) each time it looks for the signer among
them, three times per seal, and every copy parses and prepares its names again: comparing
the same few names (the root's, the CA's, the timestamp authority's, the seal's) over and
over was a fifth of a whole verification.

Path building and CRL matching also key dictionaries by a name's ``hashable`` form, which
parses and prepares every attribute of a fresh copy again.

The comparison, the preparation and the ``hashable`` form depend on their inputs alone (the
names' DER encodings; the string), and the service's files name the same few authorities over
and over, so :func:`remembered_name_comparisons` remembers them for the process (at most
:data:`CAPACITY` of each, the oldest forgotten first, none longer than :data:`LARGEST`): the
next file finds its names' results by a dictionary lookup. Nothing is remembered but these
pure results, which no input can make wrong. asn1crypto has no hook for this:
``Name.__eq__``, ``Name.hashable`` and ``NameTypeAndValue._ldap_string_prep`` are swapped
once per process for functions that use the memo only inside the block, in the thread or task
that opened it; anywhere else (the sealer, other users of asn1crypto in the process) they are
the library's own. The first use of each input runs the library's code, so a name it refuses
raises as before, and a failure is never remembered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asn1crypto import x509 as asn1_x509

__all__ = ["remembered_name_comparisons"]


_K = TypeVar("_K")
_V = TypeVar("_V")

CAPACITY = 4096
"""How many prepared values, compared pairs and names' forms are remembered, each."""
LARGEST = 1024
"""Longer names (DER bytes) and values (characters) are never remembered: real ones are a few
hundred at most, and the memo's size stays bounded whatever a hostile file names."""


@dataclass
class _Memo:
    prepared: dict[str, str] = field(default_factory=dict)
    equal: dict[tuple[bytes, bytes], bool] = field(default_factory=dict)
    hashable: dict[bytes, str] = field(default_factory=dict)


def _recall(table: dict[_K, _V], key: _K, size: int, compute: Callable[[], _V]) -> _V:
    """The value remembered under ``key``, or ``compute()``'s, remembered when ``size`` is
    within :data:`LARGEST` (an exception is never remembered)."""
    try:
        return table[key]
    except KeyError:
        pass
    value = compute()
    if size <= LARGEST:
        with _memo_lock:
            table[key] = value
            if len(table) > CAPACITY:
                # Insertion order: the oldest entry goes first (a hostile file's many names
                # cannot grow the memo without bound).
                del table[next(iter(table))]
    return value


_MEMO = _Memo()
_memo_lock = threading.Lock()
_active: ContextVar[bool] = ContextVar("econtract_name_comparisons", default=False)
_install_lock = threading.Lock()
_library_prep: Callable[[Any, str], str] = asn1_x509.NameTypeAndValue._ldap_string_prep
_library_eq: Callable[[Any, object], bool] = asn1_x509.Name.__eq__
_library_hashable: Callable[[Any], str] = asn1_x509.Name.hashable.fget
_installed = False


def _prep(self: asn1_x509.NameTypeAndValue, string: str) -> str:
    if not _active.get():
        return _library_prep(self, string)
    return _recall(_MEMO.prepared, string, len(string), lambda: _library_prep(self, string))


def _eq(self: asn1_x509.Name, other: object) -> bool:
    if not _active.get() or not isinstance(other, asn1_x509.Name):
        return _library_eq(self, other)
    key = (self.dump(), other.dump())
    return _recall(_MEMO.equal, key, max(map(len, key)), lambda: _library_eq(self, other))


def _hashable(self: asn1_x509.Name) -> str:
    if not _active.get():
        return _library_hashable(self)
    key = self.dump()
    return _recall(_MEMO.hashable, key, len(key), lambda: _library_hashable(self))


@contextmanager
def remembered_name_comparisons() -> Iterator[None]:
    """Within this block (in this thread or task), each distinct pair of distinguished names
    is compared, each name's ``hashable`` form made and each distinct attribute value prepared
    for comparison once per process (within the memo's bounds)."""
    global _installed  # noqa: PLW0603  # installed once per process
    with _install_lock:
        if not _installed:
            asn1_x509.NameTypeAndValue._ldap_string_prep = _prep
            asn1_x509.Name.__eq__ = _eq
            asn1_x509.Name.hashable = property(_hashable)
            _installed = True
    token = _active.set(True)
    try:
        yield
    finally:
        _active.reset(token)
