"""What a seal certificate names, read from the certificate alone.

The public side of ``keys``: nothing here touches a key, so ``verify`` reads a certificate's
department and seal kind without importing the CA (and with it key handles and signing).
``keys.ca`` writes these names; this module reads them back.
"""

from __future__ import annotations

from cryptography import x509

from keys.oids import ENTERPRISE_SEAL_POLICY, ORGANIZATION_IDENTIFIER, SEAL_KIND_POLICIES

ORG_ID_PREFIX = "NTRCN-"
"""The prefix of a seal certificate's organizationIdentifier before the department's unified
social credit code (ETSI EN 319 412-1 semantics identifier for a national trade register)."""


def seal_kind_of(cert: x509.Certificate) -> str | None:
    """The seal kind (``official``, ``licence``, ``contract``) named by a seal certificate."""
    try:
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return None
    kinds = {oid: kind for kind, oid in SEAL_KIND_POLICIES.items()}
    for policy in policies:
        kind = kinds.get(policy.policy_identifier)
        if kind is not None:
            return kind
    return None


def department_code_of(cert: x509.Certificate) -> str | None:
    """The unified social credit code in a seal certificate's organizationIdentifier."""
    for attribute in cert.subject.get_attributes_for_oid(ORGANIZATION_IDENTIFIER):
        value = str(attribute.value)
        if value.startswith(ORG_ID_PREFIX):
            return value[len(ORG_ID_PREFIX) :]
    return None


def is_enterprise_seal(cert: x509.Certificate) -> bool:
    """Whether a seal certificate is an enterprise's (it carries the enterprise seal policy)."""
    try:
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return False
    return any(p.policy_identifier == ENTERPRISE_SEAL_POLICY for p in policies)
