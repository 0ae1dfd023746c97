"""The service's clock: where issuance, status changes, the log and tokens take the time from.

A use case asks ``services.clock`` instead of :func:`datetime.now`, so that a test pins the
time by giving the services a :class:`FixedClock` rather than patching ``datetime``.
Licences are dated in China Standard Time; instants are kept in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Protocol

#: Licences are dated in China Standard Time.
CHINA = timezone(timedelta(hours=8), "CST")


class Clock(Protocol):
    """Where the time comes from."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    def today(self) -> date:
        """Today's date in China Standard Time."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        return datetime.now(UTC)

    def today(self) -> date:
        """Today's date in China Standard Time."""
        return datetime.now(CHINA).date()


#: The clock of a service nobody pinned.
SYSTEM_CLOCK: Clock = SystemClock()


@dataclass(frozen=True)
class FixedClock:
    """A clock that always shows the same instant (tests, replays)."""

    at: datetime
    """The instant it shows; timezone-aware."""

    def __post_init__(self) -> None:
        if not isinstance(self.at, datetime):
            raise TypeError("A fixed clock is set to a datetime.")
        if self.at.tzinfo is None:
            raise ValueError("A fixed clock is set to a timezone-aware instant, not a naive one.")

    @classmethod
    def on(cls, day: date) -> FixedClock:
        """A clock showing noon of ``day`` in China Standard Time."""
        return cls(datetime(day.year, day.month, day.day, 12, tzinfo=CHINA))

    def now(self) -> datetime:
        """The pinned instant, in UTC."""
        return self.at.astimezone(UTC)

    def today(self) -> date:
        """The pinned instant's date in China Standard Time."""
        return self.at.astimezone(CHINA).date()
