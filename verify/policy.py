"""What a verification trusts and how far it may go: trust roots, revocation data, limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from pyhanko.pdf_utils.decode_limits import DecodeLimits

from verify.registry import RegistryView

MiB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class VerificationLimits:
    """Bounds on the work one verification may do; a hostile file hits them, not the server."""

    max_file_size: int = 50 * MiB
    """Largest file accepted, in bytes (checked before anything is parsed)."""
    max_objects: int = 200_000
    """Most indirect objects a file may declare."""
    max_nesting: int = 64
    """Deepest nesting of arrays and dictionaries; pyHanko parses recursively."""
    max_revisions: int = 64
    """Most revisions (incremental updates) a file may have."""
    max_signatures: int = 32
    """Most signatures and document timestamps checked."""
    wall_seconds: float = 30.0
    """Wall time of one verification in a worker process."""
    memory_bytes: int = 1024 * MiB
    """Address-space limit of the worker process."""
    decode: DecodeLimits = field(default_factory=DecodeLimits.for_untrusted_input)
    """pyHanko's stream decompression limits (ratio, size, per-document budget)."""

    def __post_init__(self) -> None:
        for name in ("max_file_size", "max_objects", "max_nesting", "max_revisions"):
            if getattr(self, name) < 1:
                raise ValueError(f"The limit {name} must be at least 1.")
        if self.wall_seconds <= 0:
            raise ValueError("The wall-time limit must be positive.")


@dataclass(frozen=True, kw_only=True)
class VerificationPolicy:
    """What a verification trusts: roots, the caller's revocation data, the registry, the clock.

    Nothing is fetched: revocation comes from the file (DSS, CMS revocation info), from
    ``crls`` and ``ocsp_responses`` (the service's own), and from the registry.
    """

    trust_roots: tuple[x509.Certificate, ...]
    """Trusted root certificates (the service's root; an auditor's choice)."""
    crls: tuple[bytes, ...] = ()
    """DER CRLs to use besides those in the file."""
    ocsp_responses: tuple[bytes, ...] = ()
    """DER OCSP responses to use besides those in the file."""
    registry: RegistryView | None = None
    """The registry's view; ``None`` for an offline check (then "not issued here" is unknown)."""
    now: datetime | None = None
    """The validation time; ``None`` for the current time. Must be timezone-aware."""
    limits: VerificationLimits = field(default_factory=VerificationLimits)
    """Bounds on the work."""

    def __post_init__(self) -> None:
        if isinstance(self.trust_roots, list):
            object.__setattr__(self, "trust_roots", tuple(self.trust_roots))
        if not self.trust_roots:
            raise ValueError("A verification policy needs at least one trust root.")
        for root in self.trust_roots:
            if not isinstance(root, x509.Certificate):
                raise TypeError("Trust roots must be cryptography x509.Certificate objects.")
        if self.now is not None and self.now.tzinfo is None:
            raise ValueError("The validation time must be timezone-aware.")
