"""The console's tables: the people who sign in, and their sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from econtract.models import Base, utcnow


class ConsoleRole(StrEnum):
    """What a person may see in the console."""

    SUPERVISOR = "supervisor"
    """电子监察: every department, read-only; signs in with a one-time code as well."""
    DEPARTMENT_ADMIN = "department-admin"
    """A department's administrator: their own department only."""


class ConsoleUser(Base):
    """A person with a console account, created by the operator."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), default=None)
    """The department of a department admin; ``None`` for a supervisor."""
    password_hash: Mapped[str] = mapped_column(String(200))
    """argon2id, in the PHC string format (parameters and salt included)."""
    totp_secret: Mapped[str | None] = mapped_column(String(200), default=None)
    """The one-time code's secret, encrypted with a key derived from ``ECONTRACT_SECRET_KEY``;
    ``None`` for a person who signs in without one."""
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)
    """The time step of the last code accepted: a code is good once."""
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    """Failed sign-ins since the last success or lockout."""
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsoleSession(Base):
    """A signed-in browser. The cookie carries a random token; the registry keeps only its
    SHA-256, so a copy of the registry signs no one in."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_user", "user_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The SHA-256 (hex) of the cookie's token."""
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    """What every form of this session carries."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
