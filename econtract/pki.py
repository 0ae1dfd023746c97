"""The service's PKI, wired to the registry: authorities, seal certificates, CRLs, OCSP.

``keys`` knows how to build certificates, CRLs, OCSP responses and timestamps from a key
handle; this module decides which authorities exist, keeps their certificates in the
registry, and answers revocation questions from the seals table.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from sqlalchemy import Connection, Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from econtract import db, sm2_authorities
from econtract.config import Settings
from econtract.errors import RegistryError
from econtract.models import Authority as AuthorityRow
from econtract.models import Seal, SealStatus
from econtract.sm2_authorities import (
    bootstrap_sm2,
    load_sm2_issuing,
    load_sm2_root,
    load_sm2_tsa,
)
from econtract.tokens import TokenKey
from keys.ca import (
    Authority,
    PKIURLs,
    SealSubject,
    create_issuing_ca,
    create_root_ca,
    issue_ocsp_responder_certificate,
    issue_tsa_certificate,
)
from keys.crl import RevokedEntry, build_crl
from keys.filestore import FileKeyStore
from keys.handles import KeyAlgorithm, KeyHandle
from keys.ocsp import OCSPReply, OCSPResponder, RevocationStatus
from keys.sm2ca import SM2Authority, issue_sm2_seal_certificate
from keys.store import KeyStore
from keys.tsa import InProcessTimeStamper, TimestampAuthority, TimestampReply, imprint_algorithm
from signing.material import ValidationMaterial

ROOT = "root"
ISSUING = "issuing"
TSA = "tsa"
OCSP = "ocsp"
TOKEN = "token"  # noqa: S105 - the name of the QR/JWT token-signing key, not a secret
LOG = "log"
EVENT = "event"
#: The SM2 hierarchy's names, beside the first one's (econtract.sm2_authorities makes it).
SM2_ROOT = sm2_authorities.SM2_ROOT
SM2_ISSUING = sm2_authorities.SM2_ISSUING
SM2_TSA = sm2_authorities.SM2_TSA
SM2_AUTHORITIES = sm2_authorities.SM2_AUTHORITIES
#: The CAs that publish CRLs, by URL name, and which of them revoke the registry's seals.
CRL_ISSUERS = (ROOT, ISSUING, SM2_ROOT, SM2_ISSUING)
SEAL_ISSUERS = (ISSUING, SM2_ISSUING)

#: Which authorities ``econtract init`` creates, and their key algorithms.
AUTHORITY_ALGORITHMS: dict[str, KeyAlgorithm] = {
    ROOT: KeyAlgorithm.EC_P384,
    ISSUING: KeyAlgorithm.EC_P384,
    TSA: KeyAlgorithm.EC_P256,
    OCSP: KeyAlgorithm.EC_P256,
    TOKEN: KeyAlgorithm.EC_P256,
    LOG: KeyAlgorithm.EC_P256,
    EVENT: KeyAlgorithm.EC_P256,
}

#: How long a generated CRL is served before a new one is made, unless a revocation lands.
CRL_CACHE_SECONDS = 600
CRL_VALIDITY = timedelta(days=1)
#: How long the validation material embedded in B-LT seals is reused.
MATERIAL_SECONDS = 300


def new_key_label(prefix: str) -> str:
    """A fresh key label; random so that a retried, half-finished creation never collides."""
    return f"{prefix}-{secrets.token_hex(8)}"


def bootstrap_pki(session: Session, key_store: KeyStore, settings: Settings) -> list[str]:
    """Create the authorities that do not exist yet; return the names created. Idempotent."""
    rows = {row.name: row for row in session.scalars(select(AuthorityRow))}
    urls = PKIURLs(base_url=settings.public_base_url)
    org = settings.ca_organization
    created: list[str] = []

    def add_row(name: str) -> AuthorityRow:
        row = AuthorityRow(name=name, key_label=new_key_label(f"authority-{name}"))
        session.add(row)
        rows[name] = row
        created.append(name)
        return row

    def make(name: str) -> tuple[AuthorityRow, KeyHandle]:
        row = add_row(name)
        return row, key_store.generate(row.key_label, AUTHORITY_ALGORITHMS[name])

    def load(name: str) -> Authority:
        row = rows[name]
        assert row.certificate_der is not None
        chain = () if name == ROOT else (load(ROOT).certificate,)
        return Authority(
            certificate=x509.load_der_x509_certificate(row.certificate_der),
            handle=key_store.load(row.key_label),
            chain=chain,
        )

    if ROOT not in rows:
        row, handle = make(ROOT)
        root = create_root_ca(handle, common_name=f"{org} Root CA", organization=org)
        row.certificate_der = root.certificate.public_bytes(Encoding.DER)
    if ISSUING not in rows:
        row, handle = make(ISSUING)
        ca = create_issuing_ca(
            load(ROOT),
            handle,
            ca_name=ISSUING,
            common_name=f"{org} Seal CA",
            organization=org,
            urls=urls,
        )
        row.certificate_der = ca.certificate.public_bytes(Encoding.DER)
    if TSA not in rows:
        row, handle = make(TSA)
        cert = issue_tsa_certificate(
            load(ISSUING),
            handle.public_key(),
            common_name=f"{org} Timestamp Authority",
            ca_name=ISSUING,
            urls=urls,
        )
        row.certificate_der = cert.public_bytes(Encoding.DER)
    if OCSP not in rows:
        row, handle = make(OCSP)
        cert = issue_ocsp_responder_certificate(
            load(ISSUING),
            handle.public_key(),
            common_name=f"{org} OCSP Responder",
        )
        row.certificate_der = cert.public_bytes(Encoding.DER)
    if TOKEN not in rows:
        # The token key signs QR tokens and access tokens (JWS); it has no certificate.
        make(TOKEN)
    if LOG not in rows:
        # The log key signs the transparency log's tree heads; it has no certificate.
        make(LOG)
    if EVENT not in rows:
        # The event key signs webhook events only, so that a receiver that checks the key id
        # never takes an access token or a QR token for an event. A registry made before it
        # gets it at its next `econtract init` (which `econtract serve` runs).
        make(EVENT)
    if isinstance(key_store, FileKeyStore):
        bootstrap_sm2(key_store, rows, add_row, urls, org)
    session.flush()
    return created


@dataclass(eq=False)
class PKI:
    """The loaded authorities of the service, and the revocation services built on them."""

    urls: PKIURLs
    root: Authority
    issuing: Authority
    tsa_authority: Authority
    ocsp_authority: Authority
    token_key: KeyHandle
    log_key: KeyHandle
    event_key: KeyHandle
    sessions: sessionmaker[Session]
    sm2_root: SM2Authority | None = None
    """The SM2 root CA (it signs its CRL); ``None`` without a file key store."""
    sm2_issuing: SM2Authority | None = None
    """The SM2 issuing CA (its chain holds the SM2 root); ``None`` without a file key store."""
    sm2_tsa_authority: SM2Authority | None = None
    """The SM2 timestamp authority's certificate and key; ``None`` where ``sm2_issuing`` is."""
    _crl_cache: dict[str, tuple[tuple[object, ...], float, bytes]] = field(default_factory=dict)
    _material_cache: dict[int, tuple[bytes, bytes, float, ValidationMaterial]] = field(
        default_factory=dict
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _crl_locks: dict[str, threading.Lock] = field(
        default_factory=lambda: {name: threading.Lock() for name in CRL_ISSUERS}
    )

    @classmethod
    def load(cls, sessions: sessionmaker[Session], key_store: KeyStore, settings: Settings) -> PKI:
        """Load every authority from the registry and its key from the key store."""
        with sessions() as session:
            rows = {row.name: row for row in session.scalars(select(AuthorityRow))}
        missing = [n for n in AUTHORITY_ALGORITHMS if n not in rows]
        if missing:
            raise RegistryError(
                f"The PKI is not initialised (missing {', '.join(missing)}); run `econtract init`."
            )

        def cert(name: str) -> x509.Certificate:
            der = rows[name].certificate_der
            assert der is not None
            return x509.load_der_x509_certificate(der)

        root_cert = cert(ROOT)
        issuing_cert = cert(ISSUING)
        upper = (issuing_cert, root_cert)
        return cls(
            urls=PKIURLs(base_url=settings.public_base_url),
            root=Authority(certificate=root_cert, handle=key_store.load(rows[ROOT].key_label)),
            issuing=Authority(
                certificate=issuing_cert,
                handle=key_store.load(rows[ISSUING].key_label),
                chain=(root_cert,),
            ),
            tsa_authority=Authority(
                certificate=cert(TSA), handle=key_store.load(rows[TSA].key_label), chain=upper
            ),
            ocsp_authority=Authority(
                certificate=cert(OCSP), handle=key_store.load(rows[OCSP].key_label), chain=upper
            ),
            token_key=key_store.load(rows[TOKEN].key_label),
            log_key=key_store.load(rows[LOG].key_label),
            event_key=key_store.load(rows[EVENT].key_label),
            sessions=sessions,
            sm2_root=load_sm2_root(rows, key_store),
            sm2_issuing=(sm2_issuing := load_sm2_issuing(rows, key_store)),
            sm2_tsa_authority=load_sm2_tsa(rows, key_store, sm2_issuing),
        )

    @property
    def ca_certificates(self) -> dict[str, x509.Certificate]:
        """The CA certificates by their URL name."""
        return {ROOT: self.root.certificate, ISSUING: self.issuing.certificate}

    def issue_sm2_seal(
        self,
        key_store: KeyStore,
        label: str,
        *,
        subject: SealSubject,
        not_before: datetime,
        not_after: datetime,
    ) -> x509.Certificate:
        """Make an SM2 seal key under ``label`` and certify it under the SM2 issuing CA.

        The certificate ends with the CA at the latest. A key store without SM2 (a PKCS#11
        token) refuses in its own words.
        """
        if not isinstance(key_store, FileKeyStore):
            key_store.generate(label, KeyAlgorithm.SM2)  # refuses: no SM2 mechanism
            raise RegistryError("This key store cannot hold SM2 keys.")
        if self.sm2_issuing is None:
            raise RegistryError(
                "The SM2 CA hierarchy does not exist yet; run `econtract init`.", code="conflict"
            )
        handle = key_store.generate_sm2(label)
        return issue_sm2_seal_certificate(
            self.sm2_issuing,
            handle.public_key_info(),
            subject=subject,
            ca_name=SM2_ISSUING,
            urls=self.urls,
            not_before=not_before,
            not_after=min(not_after, self.sm2_issuing.certificate.not_valid_after_utc),
        )

    @property
    def crl_issuers(self) -> dict[str, Authority | SM2Authority]:
        """The CAs that publish a CRL, by URL name (the SM2 ones when they exist)."""
        issuers: dict[str, Authority | SM2Authority] = {ROOT: self.root, ISSUING: self.issuing}
        if self.sm2_root is not None and self.sm2_issuing is not None:
            issuers[SM2_ROOT] = self.sm2_root
            issuers[SM2_ISSUING] = self.sm2_issuing
        return issuers

    @property
    def sm2_ca_certificates(self) -> dict[str, x509.Certificate]:
        """The SM2 CA certificates by their URL name; empty when there is no SM2 hierarchy."""
        if self.sm2_issuing is None:
            return {}
        return {
            SM2_ROOT: self.sm2_issuing.chain[0],
            SM2_ISSUING: self.sm2_issuing.certificate,
        }

    @cached_property
    def tsa(self) -> TimestampAuthority:
        """The in-process RFC 3161 timestamp authority."""
        return TimestampAuthority(authority=self.tsa_authority)

    @cached_property
    def timestamper(self) -> InProcessTimeStamper:
        """pyHanko's client of the in-process authority (one per process: it caches its
        size estimate)."""
        return InProcessTimeStamper(self.tsa)

    @cached_property
    def sm2_tsa(self) -> TimestampAuthority | None:
        """The in-process SM2/SM3 timestamp authority (SM3 and SHA-256 imprints), if any."""
        if self.sm2_tsa_authority is None:
            return None
        return TimestampAuthority(authority=self.sm2_tsa_authority)

    @cached_property
    def sm2_timestamper(self) -> InProcessTimeStamper | None:
        """pyHanko's client of the in-process SM2 authority, for SM2 seals."""
        return None if self.sm2_tsa is None else InProcessTimeStamper(self.sm2_tsa)

    def timestamp(self, query_der: bytes) -> TimestampReply:
        """Answer an RFC 3161 TimeStampReq: an SM3 imprint by the SM2 authority, any other
        by the first one (which rejects what it does not accept)."""
        if self.sm2_tsa is not None and imprint_algorithm(query_der) == "sm3":
            return self.sm2_tsa.respond(query_der)
        return self.tsa.respond(query_der)

    @cached_property
    def token_signer(self) -> TokenKey:
        """The ES256 key of access tokens and QR tokens."""
        return TokenKey.from_handle(self.token_key)

    @cached_property
    def event_signer(self) -> TokenKey:
        """The ES256 key of webhook events (its own key id in the JWKS)."""
        return TokenKey.from_handle(self.event_key)

    def validation_material(
        self, seal_certificate: x509.Certificate, *, reads: db.ReadConnections | None = None
    ) -> ValidationMaterial:
        """What a B-LT seal embeds: chains, current CRLs and a fresh OCSP response.

        An SM2 seal's are the SM2 hierarchy's, all signed SM2-with-SM3: the SM2 CAs and
        timestamp authority, their CRLs and the SM2 issuing CA's OCSP answer. Reused for the
        same seal while the CRLs are unchanged and the OCSP response is younger than
        ``MATERIAL_SECONDS``. ``reads`` makes the check for a new revocation, asked for every
        seal, cheap (:meth:`crl_der`).
        """
        now = datetime.now(UTC)
        sm2 = self.sm2_issuing is not None and (
            seal_certificate.issuer == self.sm2_issuing.certificate.subject
        )
        root_name, issuing_name = (SM2_ROOT, SM2_ISSUING) if sm2 else (ROOT, ISSUING)
        issuer = self.crl_issuers[issuing_name]
        crls = (
            self.crl_der(root_name, now=now, reads=reads),
            self.crl_der(issuing_name, now=now, reads=reads),
        )
        serial = seal_certificate.serial_number
        with self._lock:
            cached = self._material_cache.get(serial)
        if (
            cached
            and (cached[0], cached[1]) == crls
            and now.timestamp() - cached[2] < MATERIAL_SECONDS
        ):
            return cached[3]
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(seal_certificate, issuer.certificate, hashes.SHA256())
            .build()
            .public_bytes(Encoding.DER)
        )
        services = (self.sm2_tsa_authority,) if sm2 else (self.tsa_authority, self.ocsp_authority)
        material = ValidationMaterial.build(
            certificates=[
                issuer.certificate,
                *issuer.chain,
                *(a.certificate for a in services if a is not None),
            ],
            crls=crls,
            ocsp_responses=[self.answer_ocsp(request).der],
        )
        with self._lock:
            self._material_cache[serial] = (crls[0], crls[1], now.timestamp(), material)
        return material

    def revocation_status(self, issuer: x509.Certificate, serial_number: int) -> RevocationStatus:
        """The status of a certificate issued by ``issuer``, as the registry knows it."""
        service: tuple[Authority | SM2Authority, ...]
        if issuer == self.issuing.certificate:
            issuer_name = ISSUING
            service = (self.tsa_authority, self.ocsp_authority)
        elif self.sm2_issuing is not None and issuer == self.sm2_issuing.certificate:
            issuer_name = SM2_ISSUING
            service = () if self.sm2_tsa_authority is None else (self.sm2_tsa_authority,)
        else:
            return RevocationStatus(status="unknown", revoked_at=None, reason=None)
        if serial_number in {a.certificate.serial_number for a in service}:
            return RevocationStatus(status="good", revoked_at=None, reason=None)
        with self.sessions() as session:
            seal = session.scalar(
                select(Seal).where(
                    Seal.issuer == issuer_name, Seal.serial_number == str(serial_number)
                )
            )
        if seal is None:
            return RevocationStatus(status="unknown", revoked_at=None, reason=None)
        if seal.status == SealStatus.REVOKED and seal.revoked_at is not None:
            return RevocationStatus(
                status="revoked", revoked_at=seal.revoked_at, reason=_reason(seal.revocation_reason)
            )
        return RevocationStatus(status="good", revoked_at=None, reason=None)

    def answer_ocsp(self, request_der: bytes) -> OCSPReply:
        """Answer an RFC 6960 request about a certificate of the issuing CA, or of the SM2
        issuing CA, which signs its own answers SM2-with-SM3."""
        responder = OCSPResponder(
            responder=self.ocsp_authority,
            issuers=[self.issuing.certificate],
            lookup=self.revocation_status,
        )
        reply = responder.respond(request_der)
        if reply.served or self.sm2_issuing is None:
            return reply
        sm2_responder = OCSPResponder(
            responder=self.sm2_issuing,
            issuers=[self.sm2_issuing.certificate],
            lookup=self.revocation_status,
        )
        return sm2_responder.respond(request_der)

    def crl_der(
        self,
        ca_name: str,
        *,
        now: datetime | None = None,
        reads: db.ReadConnections | None = None,
    ) -> bytes:
        """The current CRL of a CA, DER-encoded; regenerated when a revocation lands.

        ``reads`` (the service's quick read connections) makes the check for a revocation
        cheap for a caller that asks on every request, such as verification: on SQLite its
        answer is remembered until the database changes (any commit, of any process), so a
        revocation recorded anywhere is seen at once.
        """
        if ca_name not in self.crl_issuers:
            raise RegistryError(f"There is no CA named {ca_name!r}.", code="not-found")
        now = now or datetime.now(UTC)
        # A root CA revokes nothing the registry records, so only an issuing CA's CRL needs
        # the registry's word on what changed; a root's is renewed by age alone.
        fingerprint: tuple[object, ...] = ()
        if ca_name in SEAL_ISSUERS:
            fingerprint = _revocations_fingerprint(self.sessions, reads, ca_name)
        cached = self._fresh_crl(ca_name, fingerprint, now)
        if cached is not None:
            return cached
        # One regeneration per CA at a time in this process; the write transaction (BEGIN
        # IMMEDIATE on SQLite, a row lock on PostgreSQL) orders it against other processes.
        with self._crl_locks[ca_name]:
            cached = self._fresh_crl(ca_name, fingerprint, now)
            if cached is not None:
                return cached
            return self._regenerate_crl(ca_name, fingerprint, now)

    def _fresh_crl(
        self, ca_name: str, fingerprint: tuple[object, ...], now: datetime
    ) -> bytes | None:
        with self._lock:
            cached = self._crl_cache.get(ca_name)
        if cached and cached[0] == fingerprint and now.timestamp() - cached[1] < CRL_CACHE_SECONDS:
            return cached[2]
        return None

    def _regenerate_crl(
        self, ca_name: str, fingerprint: tuple[object, ...], now: datetime
    ) -> bytes:
        with db.transaction(self.sessions) as session:
            row = session.scalars(
                select(AuthorityRow).where(AuthorityRow.name == ca_name).with_for_update()
            ).one()
            row.crl_number += 1
            number = row.crl_number
            revoked = (
                [
                    RevokedEntry(
                        serial_number=int(s.serial_number),
                        revoked_at=s.revoked_at or now,
                        reason=_reason(s.revocation_reason),
                    )
                    for s in session.scalars(
                        select(Seal).where(
                            Seal.issuer == ca_name, Seal.status == SealStatus.REVOKED
                        )
                    )
                ]
                if ca_name in SEAL_ISSUERS
                else []
            )
        crl = build_crl(
            self.crl_issuers[ca_name],
            revoked=revoked,
            crl_number=number,
            this_update=now,
            next_update=now + CRL_VALIDITY,
        )
        der = crl.public_bytes(Encoding.DER)
        with self._lock:
            self._crl_cache[ca_name] = (fingerprint, now.timestamp(), der)
        return der


def _revocations(issuer: str) -> Select[int, datetime | None]:
    """How many seals of an issuing CA are revoked and the latest revocation: what the CA's
    CRL is made from changes exactly when this does (a revocation is never undone)."""
    return select(func.count(), func.max(Seal.revoked_at)).where(
        Seal.issuer == issuer, Seal.status == SealStatus.REVOKED
    )


def _revocations_fingerprint(
    sessions: sessionmaker[Session], reads: db.ReadConnections | None, issuer: str
) -> tuple[object, ...]:
    def read(conn: Connection) -> tuple[object, ...]:
        return tuple(conn.execute(_revocations(issuer)).one())

    if reads is not None:
        with contextlib.suppress(db.ReadBusyError):
            return reads.run_remembered(("crl-revocations", issuer), read)
        return reads.run(read, patient=True)
    with sessions() as session:
        return read(session.connection())


def _reason(value: str | None) -> x509.ReasonFlags | None:
    if value is None:
        return None
    try:
        return x509.ReasonFlags(value)
    except ValueError:
        return x509.ReasonFlags.unspecified
