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
- :class:`UseContext` is who uses a licence, why and for what; :func:`record_use` writes the
  usage records (用证记录) of a call and their ``licence.use`` log entries, :func:`run_use`
  runs a use case and records its refusal too, :func:`usage_digest` is what the log commits
  to, :func:`parse_holder` checks a holder code and type, :func:`list_usage` reads records
  per holder, licence or department (``_usage``).
- :func:`new_show_code` makes a 亮证码 and :func:`show_code_digest` the digest it is stored
  and found under (``_showcode``).
- :func:`authorise_use` and :func:`grant_for` say whether a department may use a licence
  (its grant and the holder's consent) or raise the :class:`UseRefusedError` naming the rule
  (``_authorise``).
- :func:`make_annotated_copy` makes an annotated copy (加注件) of a licence for one use,
  sealed by the platform seal (``_copies``); :func:`seal_by_platform` seals and registers
  any PDF the service makes itself the same way.
- :func:`read_holder` reads a holder from its code, :func:`holder_licences` lists what it
  holds across departments and :func:`holder_usage` who used it (``_holders``);
  :func:`give_consent`, :func:`list_consents`, :func:`get_consent`, :func:`withdraw_consent`
  and :func:`renew_show_code` are the holder's consents (授权用证) and their 亮证码
  (``_consents``).
- :func:`lookup_licences`, :func:`check_licence` and :func:`scan_show_code` are the using
  department's calls (用证), each recorded (``_use``); :func:`certificate_usage` lists the
  uses of an issuer's licence and :func:`usage_export` gives the auditor every record with
  its log entry (``_usage_export``).
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
from econtract.sharing._authorise import (
    ConsentExpiredError,
    ConsentMismatchError,
    ConsentRequiredError,
    ConsentWithdrawnError,
    NoGrantError,
    UseAuthorisation,
    authorise_use,
    grant_for,
    live_grants,
)
from econtract.sharing._catalogue import CatalogueEntry, IssuingDepartment, read_catalogue
from econtract.sharing._consents import (
    ConsentAlreadyWithdrawnError,
    ConsentNotActiveError,
    ConsentRequest,
    ConsentStatus,
    ConsentView,
    GivenConsent,
    NoGrantForConsentError,
    ShowCode,
    UnknownDepartmentError,
    consent_status,
    get_consent,
    give_consent,
    list_consents,
    renew_show_code,
    withdraw_consent,
)
from econtract.sharing._copies import (
    AnnotatedCopy,
    PlatformSealMissingError,
    make_annotated_copy,
    platform_seal,
    seal_by_platform,
)
from econtract.sharing._grants import (
    GrantExistsError,
    GrantView,
    add_grant,
    list_grants,
    revoke_grant,
)
from econtract.sharing._holders import HolderUsage, holder_licences, holder_usage, read_holder
from econtract.sharing._national import national_metadata
from econtract.sharing._showcode import new_show_code, show_code_digest
from econtract.sharing._usage import (
    ACTIONS,
    GRANTED,
    MAX_CASE_NUMBER_LENGTH,
    MAX_USE_CAUSE_LENGTH,
    NOT_FOUND,
    LicenceRef,
    UseContext,
    UseRefusedError,
    list_usage,
    masked_holder,
    parse_holder,
    record_use,
    run_use,
    usage_body,
    usage_digest,
)
from econtract.sharing._usage_export import UsageView, certificate_usage, usage_export
from econtract.sharing._use import (
    CheckResult,
    LookupResult,
    Omission,
    ShowCodeDepartmentError,
    ShowCodeExpiredError,
    ShowCodeUnknownError,
    ShowCodeUsedError,
    UsedLicence,
    check_licence,
    lookup_licences,
    scan_show_code,
)

__all__ = [
    "ACTIONS",
    "GRANTED",
    "MAX_CASE_NUMBER_LENGTH",
    "MAX_USE_CAUSE_LENGTH",
    "NATIONAL_STATUS",
    "NOT_FOUND",
    "PREFIX",
    "XMP_NAMESPACE",
    "AnnotatedCopy",
    "CatalogueEntry",
    "CheckResult",
    "ConsentAlreadyWithdrawnError",
    "ConsentExpiredError",
    "ConsentMismatchError",
    "ConsentNotActiveError",
    "ConsentRequest",
    "ConsentRequiredError",
    "ConsentStatus",
    "ConsentView",
    "ConsentWithdrawnError",
    "GivenConsent",
    "GrantExistsError",
    "GrantView",
    "HolderType",
    "HolderUsage",
    "InvalidIdentifierError",
    "IssuingDepartment",
    "LicenceIdentifier",
    "LicenceRef",
    "LookupResult",
    "NationalMetadata",
    "NoGrantError",
    "NoGrantForConsentError",
    "Omission",
    "PlatformSealMissingError",
    "ShowCode",
    "ShowCodeDepartmentError",
    "ShowCodeExpiredError",
    "ShowCodeUnknownError",
    "ShowCodeUsedError",
    "UnknownDepartmentError",
    "UsageView",
    "UseAuthorisation",
    "UseContext",
    "UseRefusedError",
    "UsedLicence",
    "add_grant",
    "authorise_use",
    "certificate_usage",
    "check_character",
    "check_licence",
    "consent_status",
    "get_consent",
    "give_consent",
    "grant_for",
    "holder_identity",
    "holder_licences",
    "holder_usage",
    "list_consents",
    "list_grants",
    "list_usage",
    "live_grants",
    "lookup_licences",
    "make_annotated_copy",
    "masked_holder",
    "national_metadata",
    "national_status",
    "new_show_code",
    "parse_holder",
    "parse_identifier",
    "platform_seal",
    "read_catalogue",
    "read_holder",
    "record_use",
    "renew_show_code",
    "revoke_grant",
    "run_use",
    "scan_show_code",
    "seal_by_platform",
    "show_code_digest",
    "usage_body",
    "usage_digest",
    "usage_export",
    "withdraw_consent",
]
