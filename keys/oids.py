"""Object identifiers of the service.

The service's arc is a UUID OID under ``2.25`` (ITU-T X.667), which anyone may allocate
without registration and which cannot collide with another organisation's arc::

    2.25.170598603425513468970842892596004432622       eContract
        .1.1     seal certificate policy (every department's seal certificate)
        .1.2.1   seal kind "official" (公章)
        .1.2.2   seal kind "licence"  (证照专用章)
        .1.2.3   seal kind "contract" (合同专用章)
        .1.2.4   seal kind "platform" (电子证照共享专用章)
        .1.3     enterprise seal certificate policy (an enterprise's seal, in place of .1.1)
        .2.1     timestamp policy of the service's TSA

Published certificates and timestamps carry these values: never renumber them.
"""

from __future__ import annotations

from cryptography.x509 import ObjectIdentifier

ECONTRACT_ARC = "2.25.170598603425513468970842892596004432622"
"""The root of the service's object identifiers."""

SEAL_POLICY = ObjectIdentifier(f"{ECONTRACT_ARC}.1.1")
"""The certificate policy every department's seal certificate carries."""

ENTERPRISE_SEAL_POLICY = ObjectIdentifier(f"{ECONTRACT_ARC}.1.3")
"""The certificate policy of an enterprise's seal (电子印章 of a company, held by the service
for it): in place of :data:`SEAL_POLICY`, so that a verifier tells an enterprise's seal from a
government department's by the certificate alone."""

SEAL_KIND_POLICIES: dict[str, ObjectIdentifier] = {
    "official": ObjectIdentifier(f"{ECONTRACT_ARC}.1.2.1"),
    "licence": ObjectIdentifier(f"{ECONTRACT_ARC}.1.2.2"),
    "contract": ObjectIdentifier(f"{ECONTRACT_ARC}.1.2.3"),
    # The platform body's seal (电子证照共享专用章): it seals annotated copies only.
    "platform": ObjectIdentifier(f"{ECONTRACT_ARC}.1.2.4"),
}
"""A second certificate policy per seal kind, so a verifier reads the kind from the certificate."""

TSA_POLICY = ObjectIdentifier(f"{ECONTRACT_ARC}.2.1")
"""The policy of the service's RFC 3161 timestamps."""

ORGANIZATION_IDENTIFIER = ObjectIdentifier("2.5.4.97")
"""X.520 organizationIdentifier; holds ``NTRCN-`` + the department's unified social credit code
(the ETSI EN 319 412-1 semantics identifier form for a national trade register)."""

OCSP_NOCHECK = ObjectIdentifier("1.3.6.1.5.5.7.48.1.5")
"""id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1)."""

# The national algorithms' identifiers (GM/T 0006, the 1.2.156.10197 arc of the OSCCA).
SM2_CURVE = "1.2.156.10197.1.301"
"""The SM2 curve sm2p256v1 (GB/T 32918.5), as the named curve of an id-ecPublicKey key."""

SM3 = "1.2.156.10197.1.401"
"""The SM3 digest (GB/T 32905)."""

SM2_WITH_SM3 = "1.2.156.10197.1.501"
"""SM2 signatures over SM3 (GB/T 35276), in certificates, CRLs and CMS."""


def _register_sm_oids() -> None:
    """Teach asn1crypto the names ``sm3``, ``sm2_sm3`` and ``sm2p256v1``.

    asn1crypto has no entry for the national algorithms; without one a suite could not name
    them and a certificate built with them would print bare OIDs. An OID's map is a class-level
    dictionary and its reverse map is rebuilt from it when cleared, so adding an entry is
    enough; adding it twice changes nothing.
    """
    from asn1crypto import algos, keys  # noqa: PLC0415 (registering is this import's use)

    for cls, dotted, name in (
        (algos.DigestAlgorithmId, SM3, "sm3"),
        (algos.SignedDigestAlgorithmId, SM2_WITH_SM3, "sm2_sm3"),
    ):
        if dotted not in cls._map:
            cls._map[dotted] = name
            cls._reverse_map = None
    if SM2_CURVE not in keys.NamedCurve._map:
        keys.NamedCurve.register("sm2p256v1", SM2_CURVE, 32)


_register_sm_oids()
