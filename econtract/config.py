"""Configuration: one ``Settings`` object read from ``ECONTRACT_*`` variables and ``.env``."""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from keys.config import KDF_ROUNDS
from keys.store import KeyStoreConfig

#: Secrets shipped for development. Production mode refuses every one of them.
DEVELOPMENT_PASSPHRASE = "econtract-development-passphrase"  # noqa: S105 - a refused placeholder
DEVELOPMENT_SECRET = "econtract-development-secret"  # noqa: S105 - a refused placeholder
PLACEHOLDERS = frozenset(
    {"", "changeme", "change-me", "secret", DEVELOPMENT_PASSPHRASE, DEVELOPMENT_SECRET}
)


class ConfigurationError(ValueError):
    """A setting is missing or unacceptable; the message names the setting."""


class Settings(BaseSettings):
    """Every knob of the service. Defaults run a complete development instance under ``./var``."""

    model_config = SettingsConfigDict(
        env_prefix="ECONTRACT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    mode: Literal["development", "production"] = "development"
    """``production`` refuses placeholder secrets and unencrypted keys."""
    data_dir: Path = Path("var")
    """Where the SQLite database, file keys and stored PDFs live."""
    database_url: str | None = None
    """SQLAlchemy URL; defaults to SQLite at ``<data_dir>/econtract.db``.
    PostgreSQL: ``postgresql+psycopg://user@host:5432/db``."""
    public_base_url: str = "http://127.0.0.1:8000"
    """The URL the public reaches this service at: QR codes, CRL and OCSP URLs use it."""
    service_name: str = Field(default="电子证照服务 eContract", min_length=1, max_length=100)
    """The service's own name, shown with the issuing department on the public pages (the QR
    page, the upload page) to say who runs them, e.g. ``浙江省电子证照服务``."""

    blob_store: Literal["disk", "database"] = "disk"
    """Where sealed PDFs are kept: ``disk``, files under ``<data_dir>/blobs``; ``database``,
    rows of the registry's ``blobs`` table, shared by every instance that shares the registry."""
    key_store: Literal["file", "pkcs11"] = "file"
    """Where private keys live: encrypted files or a PKCS#11 token (HSM)."""
    key_passphrase: SecretStr | None = SecretStr(DEVELOPMENT_PASSPHRASE)
    """Passphrase of the file key store."""
    key_kdf_rounds: int = Field(default=KDF_ROUNDS, ge=1000)
    """PBKDF2-HMAC-SHA256 iterations that encrypt new key files (and ``econtract keys
    rewrap``); production mode refuses fewer than OWASP's current count, the default."""
    pkcs11_module: Path | None = None
    """PKCS#11 module path, e.g. ``/usr/lib/softhsm/libsofthsm2.so``."""
    pkcs11_token: str | None = None
    """Label of the PKCS#11 token."""
    pkcs11_pin: SecretStr | None = None
    """User PIN of the PKCS#11 token."""

    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    """Server secret used to derive client-secret hashes' pepper."""

    max_upload_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    """Largest accepted upload (PDF to seal or to verify)."""
    max_request_bytes: int = Field(default=1024 * 1024, gt=0)
    """Largest accepted JSON request body."""
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    """Time limit of one verification or sealing of an uploaded file."""
    verify_workers: int | None = Field(default=None, gt=0)
    """Uploads verified at once by each server process (a worker process each, within its
    memory limit); unset: half the cores, at least one."""
    verify_queue: int | None = Field(default=None, ge=0)
    """Uploads that may wait for a verification worker in each server process; beyond them
    an upload is refused at once (503 with ``Retry-After``). Unset: twice the workers."""

    rate_token_failures: str = "10/minute"  # noqa: S105 - a rate, not a secret
    """Failed ``/v1/token`` attempts allowed per client id and per address (``limits``
    notation, e.g. ``10/minute`` or ``10/minute;100/day``); then token requests from them are
    refused (429) until the window moves on, even with the right secret."""
    rate_verify: str = "30/minute"
    """``POST /v1/verify`` uploads allowed per address. Each rate limit may be empty: no
    limit."""
    rate_qr: str = "600/minute"
    """QR page (``/v/{token}``) requests allowed per address: generous, a counter at a window
    scans many licences from one address."""
    redis_url: str | None = None
    """Redis for the rate limits' counts (``redis://host:6379/0``), shared by every server
    process and machine; unset: each process counts in its own memory."""
    rate_key_prefix: str = Field(default="econtract", min_length=1, max_length=100)
    """Prefix of the rate limits' keys in Redis, for services that share one Redis."""

    broker_url: str | None = None
    """The task queue's broker for batch rows (``redis://host:6379/1``), shared by the service
    and every ``econtract worker``; unset: batches run in the service's own process."""
    batch_queue: str = Field(default="econtract-batches", pattern=r"^[A-Za-z0-9._-]{1,60}$")
    """The broker queue that carries batch rows, for services that share one broker."""
    batch_threads: int = Field(default=2, gt=0, le=64)
    """Rows issued at once by the service's own runner (no broker) or by one worker."""
    broker_heartbeat_seconds: float = Field(default=60.0, gt=0)
    """How long a worker may go unheard before the broker hands its unfinished rows to
    another worker."""
    batch_row_attempts: int = Field(default=6, gt=0, le=100)
    """How many times a row whose issuance raises an unexpected error is tried (with backoff
    from 1 s, doubling) before it is failed with the error's kind, so that its batch ends."""
    batch_resend_seconds: float = Field(default=300.0, gt=0)
    """After how long a worker sends again the rows of a batch whose messages were never
    confirmed sent, or of every batch when no queued row has moved for that long (messages
    lost by the broker); a row delivered twice is issued once."""

    tsa_url: str | None = None
    """An external RFC 3161 timestamp authority for seals; the built-in one when unset."""
    tsa_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long to wait for an external timestamp authority."""
    dual_seal_types: list[str] = Field(default_factory=list)
    """Licence types (codes, e.g. ``["business_licence"]``) issued with a dual seal: the
    department's ECDSA or RSA licence seal certifies and its SM2 seal of the same kind
    approves after it (``econtract.dual_seal``)."""

    log_sth_seconds: float = Field(default=10.0, gt=0)
    """A signed tree head is published at least this often while log entries arrive."""

    ca_organization: str = "eContract Development PKI"
    """Organisation name in the CA certificates created by ``econtract init``."""

    log_level: str = "INFO"
    """Logging level of the JSON logs."""

    platform_code: str = Field(default="11330000MB00123436", min_length=18, max_length=18)
    """The unified social credit code of the body that runs this service (the provincial
    platform); its platform seal (kind ``platform``) seals annotated copies (加注件)."""
    platform_name: str = Field(default="省大数据发展管理局", min_length=1, max_length=100)
    """The name of that body, as its platform seal and annotated copies show it."""
    show_code_seconds: int = Field(default=300, gt=0, le=3600)
    """How long a holder's 亮证码 may be scanned after it was made (it serves once)."""
    consent_max_days: int = Field(default=366, gt=0)
    """The longest a holder's consent may last."""
    copy_max_days: int = Field(default=90, gt=0)
    """The longest an annotated copy (加注件) stays valid for its use."""
    usage_notify_days: int = Field(default=30, gt=0)
    """A using department hears of a change to a licence it used in this many past days."""
    webhook_allowed_hosts: list[str] = Field(default_factory=list)
    """Hosts a subscription may name although they resolve to a loopback, private,
    link-local or metadata address (production mode refuses those otherwise)."""
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    """How long one delivery attempt waits for the receiver."""
    webhook_max_attempts: int = Field(default=12, gt=0, le=50)
    """Delivery attempts of one event before it is given up (exponential backoff between)."""
    webhook_poll_seconds: float = Field(default=1.0, ge=0, le=3600)
    """How often the service's webhook worker looks for new events and due deliveries; 0
    runs no worker in the service (``econtract webhooks run`` delivers instead)."""
    envelope_remind_hours: float = Field(default=24.0, gt=0)
    """An envelope's open step is reminded (``envelope.reminder``) once, this many hours or
    less before its deadline."""
    issuance_claim_timeout_seconds: float = Field(default=300.0, gt=0)
    """A licence number claimed but not registered for this long is void (its issuance
    died between claiming and registering); longer than any issuance takes."""
    warn_deadline_hours: float = Field(default=24.0, gt=0)
    """Supervision warns of an envelope's open step this many hours or less before its
    deadline (``WR-DEADLINE-NEAR``), and again once it has passed (``WR-DEADLINE-PAST``)."""
    warn_revocation_factor: float = Field(default=3.0, gt=0)
    """A department's revocations of one day above this many times its usual daily rate (the
    mean of the previous ``warn_revocation_days``) raise ``WR-REVOCATION-SPIKE``."""
    warn_revocation_min: int = Field(default=5, gt=0)
    """... and at least this many revocations that day (a quiet department's two are none)."""
    warn_revocation_days: int = Field(default=28, gt=0, le=366)
    """The days before today whose mean is a department's usual daily rate of revocations."""
    warn_office_start: time = time(8, 30)
    """Office hours begin (China time): a licence issued earlier raises ``WR-OFF-HOURS``."""
    warn_office_end: time = time(18, 0)
    """Office hours end (China time)."""
    warn_workdays: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    """The ISO weekdays (1 Monday … 7 Sunday) that are workdays; other days are outside
    office hours all day."""
    warn_failed_scans: int = Field(default=5, gt=0)
    """One licence (or one unreadable code) answered FORGED or UNKNOWN on the QR page, or
    INVALID or MODIFIED on verification, this many times in a day raises
    ``WR-FAILED-SCANS``."""
    console_session_hours: float = Field(default=8.0, gt=0, le=24 * 7)
    """A console session ends this many hours after its sign-in, however busy."""
    console_idle_minutes: float = Field(default=30.0, gt=0)
    """A console session ends after this many minutes without a request."""
    console_max_failures: int = Field(default=5, gt=0, le=100)
    """Failed console sign-ins in a row that lock the account."""
    console_lock_minutes: float = Field(default=15.0, gt=0)
    """How long a locked console account refuses every sign-in, the right password too."""
    console_rate_sign_in: str = "10/minute"
    """Console sign-in attempts per address and per name (``limits`` notation; empty for
    none); counted when they fail."""
    console_secure_cookie: bool = False
    """Mark the console's cookies ``Secure`` even on a request that reached the service over
    plain HTTP (behind a proxy that ends TLS); they always are on https."""

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.mode != "production":
            return self
        if self.key_store == "file":
            _require_secret("ECONTRACT_KEY_PASSPHRASE", self.key_passphrase)
            if self.key_kdf_rounds < KDF_ROUNDS:
                raise ConfigurationError(
                    f"ECONTRACT_KEY_KDF_ROUNDS must be at least {KDF_ROUNDS:,} in production."
                )
        else:
            if self.pkcs11_module is None:
                raise ConfigurationError(
                    "ECONTRACT_PKCS11_MODULE must be set for key_store=pkcs11."
                )
            if not self.pkcs11_token:
                raise ConfigurationError("ECONTRACT_PKCS11_TOKEN must be set for key_store=pkcs11.")
            _require_secret("ECONTRACT_PKCS11_PIN", self.pkcs11_pin)
        _require_secret("ECONTRACT_SECRET_KEY", self.secret_key)
        if (
            self.public_base_url.startswith("http://127.0.0.1")
            or "localhost" in self.public_base_url
        ):
            raise ConfigurationError(
                "ECONTRACT_PUBLIC_BASE_URL must be the public URL of the service in production."
            )
        if not self.public_base_url.lower().startswith("https://"):
            # Printed QR codes and the CRL, OCSP and TSA URLs in every seal would point to
            # plain HTTP, open to anyone on the path, for as long as the paper lives.
            raise ConfigurationError(
                "ECONTRACT_PUBLIC_BASE_URL must be an https:// URL in production, not "
                f"{self.public_base_url!r}."
            )
        return self

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data directory."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'econtract.db').as_posix()}"

    @property
    def blob_dir(self) -> Path:
        """Where sealed PDFs are stored."""
        return self.data_dir / "blobs"

    def key_store_config(self) -> KeyStoreConfig:
        """The key store's configuration."""
        return KeyStoreConfig(
            backend=self.key_store,
            directory=self.data_dir / "keys",
            passphrase=self.key_passphrase.get_secret_value() if self.key_passphrase else None,
            require_encryption=self.mode == "production",
            kdf_rounds=self.key_kdf_rounds,
            pkcs11_module=self.pkcs11_module,
            pkcs11_token_label=self.pkcs11_token,
            pkcs11_user_pin=self.pkcs11_pin.get_secret_value() if self.pkcs11_pin else None,
        )


def _require_secret(name: str, value: SecretStr | None) -> None:
    if value is None or value.get_secret_value().strip().lower() in PLACEHOLDERS:
        raise ConfigurationError(
            f"{name} is missing or a placeholder; production mode needs a real secret."
        )
    if len(value.get_secret_value()) < 12:
        raise ConfigurationError(
            f"{name} is too short; production mode needs at least 12 characters."
        )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests override them by clearing this cache)."""
    return Settings()
