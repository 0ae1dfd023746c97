"""Licence sharing (用证): the national identity of every licence and what other platforms
read of it.

- :class:`LicenceIdentifier` and :func:`parse_identifier` are the licence identifier of
  GB/T 36904 with its ISO 7064 MOD 37,36 check character; :class:`NationalMetadata` is the
  GB/T 36903 metadata a certificate's JSON and its PDF's XMP carry, and
  :data:`NATIONAL_STATUS` maps our statuses to the national ones. Both are pure and live in
  the flat modules :mod:`econtract.licence_identifier` and :mod:`econtract.licence_metadata`,
  because issuance stamps them on every licence and this package builds on issuance;
  :func:`national_metadata` reads a registered certificate's (``_national``).
- :func:`read_catalogue` is the catalogue of licence types (证照目录) as
  :class:`CatalogueEntry` values (``_catalogue``).
- :func:`add_grant`, :func:`list_grants` and :func:`revoke_grant` keep the use list
  (用证清单) of :class:`GrantView` entries; :class:`GrantExistsError` refuses a second grant
  (``_grants``).
"""

from __future__ import annotations

from econtract.licence_identifier import (
    PREFIX,
    InvalidIdentifierError,
    LicenceIdentifier,
    check_character,
)
from econtract.licence_identifier import parse as parse_identifier
from econtract.licence_metadata import (
    NATIONAL_STATUS,
    XMP_NAMESPACE,
    HolderType,
    NationalMetadata,
    holder_identity,
    national_status,
)
from econtract.sharing._catalogue import CatalogueEntry, IssuingDepartment, read_catalogue
from econtract.sharing._grants import (
    GrantExistsError,
    GrantView,
    add_grant,
    list_grants,
    revoke_grant,
)
from econtract.sharing._national import national_metadata

__all__ = [
    "NATIONAL_STATUS",
    "PREFIX",
    "XMP_NAMESPACE",
    "CatalogueEntry",
    "GrantExistsError",
    "GrantView",
    "HolderType",
    "InvalidIdentifierError",
    "IssuingDepartment",
    "LicenceIdentifier",
    "NationalMetadata",
    "add_grant",
    "check_character",
    "holder_identity",
    "list_grants",
    "national_metadata",
    "national_status",
    "parse_identifier",
    "read_catalogue",
    "revoke_grant",
]
