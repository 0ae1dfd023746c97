"""A seeded registry for supervision: 90 days of a province's work, walked by a simulated clock.

Run::

    .venv/bin/python -m bench.seed_supervision --data-dir DIR [--database-url URL]
        [--days 90] [--scale 1.0] [--seed 7] [--end YYYY-MM-DD]

Initialises a registry in ``DIR`` (as ``econtract init`` does; SQLite in ``DIR`` unless
``--database-url`` names another database, which must be empty), then walks ``--days`` days
ending the day before ``--end`` (default: today in China Standard Time), moving the clock the
services read from event to event. Everything is done by the domain's public use cases, so
every record (audit event, status event, log entry, outbox row, usage record) is the one the
service itself writes:

- five departments (two market regulators that issue business licences and food permits, a
  construction bureau that issues construction permits and initiates contracts, the tax bureau
  and the social security bureau that use licences), four enterprises with contract seals,
  the API clients each acts through, the grants of the use list;
- issuance on workdays in office hours, more on Mondays, a few outside hours and at weekends,
  growing slowly over the period; renewals (supersession); revocations and suspensions with
  reasons of several kinds, reinstatements, and one day on which one department revokes many;
- envelopes: contracts between enterprises and the construction bureau, parallel approval
  cases (企业开办一件事) whose completion issues a licence; most complete within days, some
  are declined, some expire (the deadline sweep runs every six hours), the last days' are
  still open near their deadlines;
- uses by the departments that do not issue: lookups and checks, with the holder's consent
  where the grant needs it, refused ones (no grant, no consent, a changed field) and lookups
  of licences revoked before;
- official documents sealed by the issuers, and QR scans (valid, tampered, not issued here)
  answered by ``check_qr`` and counted as the QR page counts them (``count_qr_answer``);
- a document system onboarded three quarters into the period, with a client of its own that
  seals with a seal another client used before it;
- the worker's round (``run_round``) every six hours: it adds the scans' counts up, expires
  envelopes past their deadline, raises supervision's early warnings, fans events out.

Random choices come from ``--seed`` alone, so two runs with the same arguments give the same
counts (the ids, keys and signatures differ). ``--scale`` multiplies every rate; the default
(about 1,800 licences, 120 envelopes and 200 notices: some 2,700 seals) takes about 100 s of
CPU, three minutes on two busy cores. The summary prints the registry's counts per kind and
the time taken.
"""

from __future__ import annotations

import argparse
import base64
import functools
import heapq
import io
import itertools
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from econtract import audit, db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE, initialise
from econtract.certificates import change_status, supersede
from econtract.clients import create_client, pepper_of
from econtract.clock import CHINA
from econtract.config import Settings
from econtract.departments import add_department
from econtract.enterprises import add_enterprise
from econtract.envelopes import (
    Envelope,
    EnvelopeRequest,
    IssueLicence,
    PartySpec,
    StepSpec,
    create_envelope,
    decline,
    seal_step,
)
from econtract.errors import EContractError
from econtract.issuance import TEMPLATES, IssueRequest, QRClaims, check_qr, issue_certificate
from econtract.issuance import make_qr_token as make_token
from econtract.models import (
    AuditEvent,
    Certificate,
    Consent,
    Department,
    OutboxEvent,
    Seal,
    SealedDocument,
    SealKind,
    StatusEvent,
    UsageRecord,
)
from econtract.sealing import seal_document
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from econtract.sharing import (
    ConsentRequest,
    HolderType,
    UseContext,
    UseRefusedError,
    add_grant,
    check_licence,
    give_consent,
    lookup_licences,
)
from econtract.supervision import ScanCount, SupervisionWarning, count_qr_answer
from econtract.uscc import check_character, organisation_check_character
from econtract.webhooks import run_round
from keys.handles import KeyAlgorithm
from signing.options import SealOptions
from tests.data import load_holders

OPERATOR = audit.Actor.operator("seed")
NINGBO = "11330200002503111F"
BUILDING = "11330100002504122M"
TAX = "113301000025051331"
SOCIAL = "11330100002506144C"
#: The departments besides the demo one (valid credit codes, GB 32100): code, name, issues?
DEPARTMENTS = (
    (NINGBO, "宁波市市场监督管理局", True),
    (BUILDING, "杭州市住房和城乡建设局", True),
    (TAX, "国家税务总局杭州市税务局", False),
    (SOCIAL, "杭州市人力资源和社会保障局", False),
)
ISSUERS = (DEMO_DEPARTMENT_CODE, NINGBO, BUILDING)
#: Issuance per workday at the period's start: (department, licence type, licences).
ISSUANCE = (
    (DEMO_DEPARTMENT_CODE, "business_licence", 9.0),
    (DEMO_DEPARTMENT_CODE, "food_business_permit", 4.0),
    (NINGBO, "business_licence", 6.0),
    (NINGBO, "food_business_permit", 2.0),
    (BUILDING, "construction_permit", 3.0),
)
#: How each weekday weighs, Monday first: the weekend's applications arrive on Monday.
WEEKDAY = (1.5, 1.0, 1.0, 1.0, 0.9, 0.04, 0.02)
#: Uses of business licences per workday: (department, matter, cause, needs consent, uses).
USES = (
    (TAX, "税务登记", "核验纳税人营业执照", False, 6.0),
    (SOCIAL, "社会保险登记", "核验参保单位营业执照", True, 4.0),
    (BUILDING, "建筑工程施工许可", "核验施工单位营业执照", False, 3.0),
)
REVOKE_REASONS = (
    ("注销：企业申请注销登记", 5),
    ("吊销：以欺骗手段取得许可", 1),
    ("变更：登记事项变更，收回原证", 3),
    ("错误签发：申请材料与登记信息不符", 1),
    ("未说明", 1),
)
SUSPEND_REASONS = (
    ("暂停：涉嫌违法经营，立案调查期间", 3),
    ("暂停：经营场所无法取得联系", 2),
    ("挂起：等待补正材料", 1),
)
SPIKE_REASON = "吊销：连续两年未报送年度报告（集中清理）"
#: What becomes of an envelope, by weight; the first three are one of each.
FATES = (("complete", 84), ("decline", 8), ("expire", 8))
HOUR = timedelta(hours=1)


@dataclass
class SimulatedClock:
    """The services' clock (the ``Clock`` protocol), moved forward by the walk."""

    at: datetime
    """The instant it shows; timezone-aware."""

    def now(self) -> datetime:
        """The simulated instant, in UTC."""
        return self.at.astimezone(UTC)

    def today(self) -> date:
        """The simulated date in China Standard Time."""
        return self.at.astimezone(CHINA).date()


@dataclass(frozen=True)
class Body:
    """A department or an enterprise as the walk drives it: its client's actor, its seals."""

    code: str
    actor: audit.Actor
    client_id: str
    seals: dict[str, str]
    """Seal ids by kind."""


@dataclass
class Licence:
    """What the walk remembers of a licence it issued (its own view of the status, so that
    its choices do not depend on the order a database returns rows in)."""

    id: str
    department: str
    type_code: str
    status: str
    holder: tuple[str, HolderType] | None
    fields: dict[str, Any]
    claims: QRClaims


@dataclass(order=True)
class _Event:
    at: datetime
    seq: int
    run: Callable[[], object] = field(compare=False)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: the means here are small)."""
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def pick(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    """One of ``choices`` by weight."""
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def source_pdf(title: str) -> bytes:
    """A one-page document to seal."""
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.drawString(72, 760, title)
    page.showPage()
    page.save()
    return out.getvalue()


class Walk:
    """The simulation: timed events run in order on the simulated clock; each day's events
    are planned when the day begins."""

    def __init__(self, services: Services, clock: SimulatedClock, *, seed: int, scale: float):
        self.services, self.clock, self.scale = services, clock, scale
        self.rng = random.Random(seed)
        self.queue: list[_Event] = []
        self.seq = itertools.count()
        self.bodies: dict[str, Body] = {}
        self.documents: dict[str, Body] = {}
        """The document systems onboarded during the walk, by department."""
        self.licences: list[Licence] = []
        self.holder_rows = load_holders()
        self.enterprises = [row["credit_code"] for row in self.holder_rows[:4]]
        self.holder_codes: set[str] = set(self.enterprises)
        self.fates = ["complete", "decline", "expire"]
        self.revocations_seen = 0
        self.spiked = False
        """Whether the day of one department's many revocations has been planned."""

    # -- the queue --------------------------------------------------------------------------

    def at(self, when: datetime, run: Callable[..., object], *args: Any) -> None:
        """Call ``run(*args)`` when the clock reaches ``when``."""
        heapq.heappush(self.queue, _Event(when, next(self.seq), functools.partial(run, *args)))

    def walk(self, first: date, days: int) -> None:
        """Plan and run ``days`` days from ``first``; what falls after them never happens."""
        for n in range(days):
            day = first + timedelta(days=n)
            self.at(_at(day, 0), self.plan_day, n, days, day)
        end = _at(first + timedelta(days=days), 0)
        while self.queue and self.queue[0].at < end:
            event = heapq.heappop(self.queue)
            self.clock.at = max(self.clock.at, event.at)
            event.run()
        self.clock.at = end
        run_round(self.services)

    # -- set-up -----------------------------------------------------------------------------

    def set_up(self) -> None:
        """Departments, enterprises, seals, clients and grants, as an operator records them."""
        platform = self.services.settings.platform_code
        with db.transaction(self.services.sessions) as session:
            for code, name, _ in DEPARTMENTS:
                add_department(session, code=code, name=name, region=None, actor=OPERATOR)
            for row in self.holder_rows[:4]:
                add_enterprise(session, code=row["credit_code"], name=row["name"], actor=OPERATOR)
            for code in ISSUERS:
                self._body(
                    session, code, (SealKind.OFFICIAL, SealKind.LICENCE), "issue,read,revoke,seal"
                )
            for code in (TAX, SOCIAL):
                self._body(session, code, (SealKind.OFFICIAL,), "use,seal")
            for code in self.enterprises:
                self._body(session, code, (SealKind.CONTRACT,), "sign")
            self._body(session, platform, (), "holder")
            for code, matter, _, consent, _ in USES:
                add_grant(
                    session,
                    department_code=code,
                    type_code="business_licence",
                    matters=(matter,),
                    requires_consent=consent,
                    actor=OPERATOR,
                    clock=self.clock,
                )

    def _body(self, session: Session, code: str, kinds: tuple[SealKind, ...], scopes: str) -> None:
        department = session.scalars(select(Department).where(Department.code == code)).one()
        query = select(Seal.kind, Seal.id).where(Seal.department_id == department.id)
        seals = {row.kind: row.id for row in session.execute(query)}
        for kind in kinds:
            if kind.value not in seals:
                seals[kind.value] = create_seal(
                    session,
                    request=SealRequest(
                        department_code=code, kind=kind, algorithm=KeyAlgorithm.EC_P256
                    ),
                    key_store=self.services.key_store,
                    pki=self.services.pki,
                    actor=OPERATOR,
                    clock=self.clock,
                ).id
        client, _ = create_client(
            session,
            department_code=code,
            name="业务系统",
            scopes=scopes,
            actor=OPERATOR,
            pepper=pepper_of(self.services.settings),
        )
        actor = audit.Actor(name=f"client:{client.id}", department_id=department.id)
        self.bodies[code] = Body(code, actor, client.id, seals)

    # -- a day ------------------------------------------------------------------------------

    def plan_day(self, n: int, days: int, day: date) -> None:
        """Put the day's events on the queue."""
        rng, weekday = self.rng, day.weekday()
        workday = weekday < 5
        weight = WEEKDAY[weekday] * self.scale * (0.8 + 0.45 * n / max(days - 1, 1))
        for department, type_code, rate in ISSUANCE:
            for _ in range(poisson(rng, rate * weight)):
                self.at(self._office(day), self.issue, department, type_code)
        for hour in (0.5, 6.5, 12.5, 18.5):
            self.at(_at(day, hour), run_round, self.services)
        for _ in range(poisson(rng, 30 * self.scale * (1 if workday else 0.5))):
            self.at(_at(day, rng.uniform(7, 23)), self.scan)
        if n == int(days * 0.4):
            unknown = self.unknown_id()
            for _ in range(max(6, round(12 * self.scale))):
                self.at(_at(day, rng.uniform(19, 22)), self.scan, unknown)
        if n == int(days * 0.75):
            self.at(_at(day, 8), self.onboard, DEMO_DEPARTMENT_CODE)
        if not workday:
            return
        for department in ISSUERS:
            # Revocations and suspensions follow the department's size, renewals less so.
            size = sum(rate for d, _, rate in ISSUANCE if d == department)
            for _ in range(poisson(rng, 0.04 * size * weight)):
                self.at(self._office(day), self.change, department, "revoke")
            for _ in range(poisson(rng, 0.02 * size * weight)):
                self.at(self._office(day), self.change, department, "suspend")
            for _ in range(poisson(rng, 0.2 * weight)):
                self.at(self._office(day), self.renew, department)
            for _ in range(poisson(rng, 1.0 * weight)):
                self.at(self._office(day), self.seal_notice, department)
        if n >= int(days * 0.6) and not self.spiked:
            self.spiked = True
            for _ in range(max(3, round(12 * self.scale))):
                self.at(
                    _at(day, rng.uniform(9.5, 11.5)),
                    self.change,
                    NINGBO,
                    "revoke",
                    SPIKE_REASON,
                )
        for department, matter, cause, consent, rate in USES:
            for _ in range(poisson(rng, rate * weight)):
                self.at(self._office(day), self.use, department, matter, cause, consent)
        contracts, cases = poisson(rng, 1.0 * weight), poisson(rng, 0.8 * weight)
        if self.fates:  # the first workday has one envelope of each fate
            contracts, cases = max(contracts, 2), max(cases, 1)
        for kind in ["contract"] * contracts + ["case"] * cases:
            self.at(self._office(day), self.envelope, kind)

    def _office(self, day: date) -> datetime:
        """A time of ``day`` when clerks issue: office hours mostly, now and then outside."""
        rng = self.rng
        if day.weekday() >= 5:
            return _at(day, rng.uniform(9, 17))
        if rng.random() < 0.01:
            return _at(day, rng.choice((rng.uniform(6.5, 8.5), rng.uniform(18.5, 22.5))))
        return _at(day, rng.choice((rng.uniform(8.5, 12), rng.uniform(13.5, 17.5))))

    # -- issuance and status ----------------------------------------------------------------

    def holder_code(self) -> str:
        """A credit code for a new holder (GB 32100 check characters), never given before."""
        while True:
            body = f"{self.rng.randrange(10**8):08d}"
            first17 = "913301" + self.rng.choice(("00", "02", "06", "10")) + body
            first17 += organisation_check_character(body)
            code = first17 + check_character(first17)
            if code not in self.holder_codes:
                self.holder_codes.add(code)
                return code

    def fields(self, type_code: str) -> dict[str, Any]:
        """A new holder's fields: a sample business (``holders.csv``) with a code of its own."""
        row = self.rng.choice(self.holder_rows)
        fields: dict[str, Any] = dict(TEMPLATES[type_code].schema["examples"][0])
        if type_code == "business_licence":
            fields.update(row)
        elif type_code == "food_business_permit":
            fields.update(operator_name=row["name"], address=row["address"])
            fields.update(legal_representative=row["legal_representative"])
            fields["premises"] = row["address"] + "一层"
        else:
            fields["builder"] = row["name"]
            fields["project_name"] = (
                f"{row['address'][6:9]}科创园{self.rng.randrange(1, 30)}号楼工程"
            )
        if "credit_code" in fields:
            fields["credit_code"] = self.holder_code()
        return fields

    def issue(self, department: str, type_code: str) -> None:
        """Issue one licence for a new holder."""
        issued = issue_certificate(
            self.services,
            department_code=department,
            request=IssueRequest(type_code=type_code, fields=self.fields(type_code)),
            actor=self.bodies[department].actor,
        )
        self.remember(issued.certificate, department)

    def remember(self, certificate: Certificate, department: str) -> None:
        """Keep what the walk needs of a licence just issued."""
        code, kind = certificate.national_holder_code, certificate.national_holder_type
        self.licences.append(
            Licence(
                id=certificate.id,
                department=department,
                type_code=certificate.type_code,
                status="valid",
                holder=None if code is None or kind is None else (code, HolderType(kind)),
                fields=dict(certificate.fields),
                claims=QRClaims(certificate_id=certificate.id, issued_at=certificate.issued_at),
            )
        )

    def valid_of(self, department: str) -> list[Licence]:
        """The department's licences the walk knows valid, oldest first."""
        return [c for c in self.licences if c.department == department and c.status == "valid"]

    def change(self, department: str, action: str, reason: str | None = None) -> None:
        """Revoke or suspend one of the department's valid licences; a suspension is mostly
        lifted some days later; a revoked business licence is sometimes used afterwards."""
        candidates = self.valid_of(department)
        if not candidates:
            return
        licence = self.rng.choice(candidates)
        reasons = REVOKE_REASONS if action == "revoke" else SUSPEND_REASONS
        self._change(licence, action, reason or pick(self.rng, reasons))
        later = self.clock.at + timedelta(days=self.rng.uniform(2, 10))
        if action == "suspend" and self.rng.random() < 0.7:
            self.at(_office_of(later), self._change, licence, "reinstate", "调查结束，恢复使用")
        if action == "revoke" and licence.type_code == "business_licence":
            first = self.revocations_seen == 0
            self.revocations_seen += 1
            if first or self.rng.random() < 0.15:
                when = self.clock.at + timedelta(hours=self.rng.uniform(2, 30))
                self.at(when, self.use, TAX, "税务登记", "核验纳税人营业执照", False, licence)

    def _change(self, licence: Licence, action: str, reason: str) -> None:
        if action == "reinstate" and licence.status != "suspended":
            return
        change_status(
            self.services,
            certificate_id=licence.id,
            action=action,
            reason=reason,
            actor=self.bodies[licence.department].actor,
        )
        licence.status = {"revoke": "revoked", "suspend": "suspended"}.get(action, "valid")

    def renew(self, department: str) -> None:
        """Renew a licence (a new one supersedes it); a business licence changes its address."""
        candidates = self.valid_of(department)
        if not candidates:
            return
        old = self.rng.choice(candidates)
        changes: dict[str, object] | None = None
        if old.type_code == "business_licence":
            changes = {"address": self.rng.choice(self.holder_rows)["address"]}
        issued = supersede(
            self.services,
            certificate_id=old.id,
            department_code=department,
            fields=changes,
            valid_from=None,
            valid_until=None,
            actor=self.bodies[department].actor,
        )
        old.status = "superseded"
        self.remember(issued.certificate, department)

    def onboard(self, department: str) -> None:
        """The department's document system gets a client of its own, which from now on seals
        half of its notices (with a seal that another client used before it)."""
        with db.transaction(self.services.sessions) as session:
            client, _ = create_client(
                session,
                department_code=department,
                name="公文系统",
                scopes="seal",
                actor=OPERATOR,
                pepper=pepper_of(self.services.settings),
            )
        body = self.bodies[department]
        actor = audit.Actor(name=f"client:{client.id}", department_id=body.actor.department_id)
        self.documents[department] = Body(department, actor, client.id, body.seals)

    def seal_notice(self, department: str) -> None:
        """Seal an official document (公文) with the department's official seal."""
        body = self.bodies[department]
        if department in self.documents and self.rng.random() < 0.5:
            body = self.documents[department]
        seal_document(
            self.services,
            source=io.BytesIO(source_pdf(f"Notice {self.rng.randrange(10**6):06d}")),
            seal_id=body.seals[SealKind.OFFICIAL.value],
            options=SealOptions(),
            actor=body.actor,
            file_name="通知.pdf",
        )

    # -- uses and scans ---------------------------------------------------------------------

    def use(
        self,
        department: str,
        matter: str,
        cause: str,
        consent: bool,
        licence: Licence | None = None,
    ) -> None:
        """A using department looks a business licence's holder up or checks declared data,
        with the holder's consent where its grant asks for it; now and then it asks for what
        it may not have, which is refused and recorded too."""
        rng = self.rng
        if licence is None:
            # A revoked licence is used now and then only (``change`` plans those uses).
            held = [
                c
                for c in self.licences
                if c.type_code == "business_licence" and c.holder and c.status != "revoked"
            ]
            if not held:
                return
            licence = rng.choice(held)
        assert licence.holder is not None
        body = self.bodies[department]
        assert body.actor.department_id is not None
        context = UseContext.create(
            department_id=body.actor.department_id,
            department_code=department,
            client_id=body.client_id,
            use_cause=cause,
            matter=matter,
            case_number=f"{department[2:8]}-{self.clock.today().year}-{rng.randrange(10**6):06d}",
        )
        roll = rng.random()
        try:
            if consent and roll < 0.7:
                lookup_licences(
                    self.services,
                    context,
                    holder=licence.holder,
                    consent_id=self.consent(licence, department, matter),
                )
            elif consent or (department == BUILDING and roll < 0.15):
                wanted = "business_licence" if consent else "food_business_permit"
                lookup_licences(self.services, context, holder=licence.holder, type_code=wanted)
            elif department == TAX and roll < 0.2:
                declared = dict(licence.fields)
                if roll < 0.05:
                    declared["legal_representative"] = "王五"
                check_licence(self.services, context, type_code="business_licence", fields=declared)
            else:
                lookup_licences(self.services, context, holder=licence.holder)
        except UseRefusedError:
            pass  # recorded by the use case before it was raised

    def unknown_id(self) -> str:
        """A certificate id of the registry's form that no licence has."""
        return "crt_" + base64.urlsafe_b64encode(self.rng.randbytes(16)).decode().rstrip("=")

    def consent(self, licence: Licence, department: str, matter: str) -> str:
        """The holder consents in the holder app to this department's use of the licence."""
        assert licence.holder is not None
        app = self.bodies[self.services.settings.platform_code]
        given = give_consent(
            self.services,
            holder=licence.holder,
            request=ConsentRequest(
                department=department,
                type_code=None,
                certificate=licence.id,
                matter=matter,
                case_number=None,
                valid_until=self.clock.now() + timedelta(days=7),
                show_code=False,
            ),
            client_id=app.client_id,
            actor=app.actor,
        )
        return given.consent.id

    def scan(self, unknown: str | None = None) -> None:
        """Someone scans a licence's QR code: mostly a genuine one, sometimes a tampered token
        (FORGED) or a signed one naming a licence not in the registry (UNKNOWN; ``unknown``
        names it for a burst of scans of one such code)."""
        if not self.licences:
            return
        rng = self.rng
        licence, roll = rng.choice(self.licences), 1.0 if unknown else rng.random()
        claims = licence.claims
        if roll >= 0.93:
            claims = QRClaims(
                certificate_id=unknown or self.unknown_id(), issued_at=claims.issued_at
            )
        token = make_token(self.services.pki.token_signer, claims)
        if roll < 0.07:
            middle = len(token) // 2
            token = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
        check = check_qr(self.services, token, patient=True)
        # Counted as the QR page counts its answers; the worker's round adds them up.
        count_qr_answer(self.services, token, check.verdict.value, check.certificate_id)

    # -- envelopes --------------------------------------------------------------------------

    def envelope(self, kind: str) -> None:
        """Start a contract (two enterprises in parallel, then the construction bureau) or a
        parallel approval case (tax and social security in parallel, then the market
        regulator, whose completion issues the business licence), and plan its parties' acts
        by its fate."""
        rng, now = self.rng, self.clock.at
        if kind == "contract":
            initiator, title, first_days, then_days = BUILDING, "建设工程施工合同", 3, 2
            a, b = rng.sample(self.enterprises, 2)
            parties = [[(a, "PartyA", SealKind.CONTRACT), (b, "PartyB", SealKind.CONTRACT)]]
            parties.append([(BUILDING, "Owner", SealKind.OFFICIAL)])
            on_complete = None
        else:
            initiator, title, first_days, then_days = DEMO_DEPARTMENT_CODE, "企业开办一件事", 2, 1
            parties = [[(TAX, "Tax", SealKind.OFFICIAL), (SOCIAL, "Social", SealKind.OFFICIAL)]]
            parties.append([(DEMO_DEPARTMENT_CODE, "Registry", SealKind.OFFICIAL)])
            on_complete = IssueLicence(
                type_code="business_licence", fields=self.fields("business_licence")
            )
        deadlines = [now + timedelta(days=first_days)]
        deadlines.append(deadlines[0] + timedelta(days=then_days))
        steps = tuple(
            StepSpec(
                parties=tuple(
                    PartySpec(code=code, field=name, x=150 + 150 * i)
                    for i, (code, name, _) in enumerate(step)
                ),
                deadline=deadline,
            )
            for step, deadline in zip(parties, deadlines, strict=True)
        )
        body = self.bodies[initiator]
        view = create_envelope(
            self.services,
            source=source_pdf(f"{kind} {rng.randrange(10**6):06d}"),
            request=EnvelopeRequest(
                title=title,
                seal_id=body.seals[SealKind.OFFICIAL.value],
                steps=steps,
                on_complete=on_complete,
            ),
            actor=body.actor,
        )
        fate = self.fates.pop(0) if self.fates else pick(rng, FATES)
        stop = rng.randrange(len(parties)) if fate == "decline" else 0
        opens = now
        for number, (step, deadline) in enumerate(zip(parties, deadlines, strict=True)):
            window = (deadline - opens) * 0.8
            times = [opens + rng.uniform(0.5 * HOUR / window, 1) * window for _ in step]
            if fate != "complete" and number == stop:
                # The last of the step to act declines, or never acts and the step expires.
                last = max(range(len(step)), key=lambda i: times[i])
                for i, (code, _, seal) in enumerate(step):
                    if i != last:
                        self.at(times[i], self.seal, view.id, code, seal)
                    elif fate == "decline":
                        self.at(times[i], self.decline, view.id, code)
                return
            for when, (code, _, seal) in zip(times, step, strict=True):
                self.at(when, self.seal, view.id, code, seal)
            opens = max(times)

    def seal(self, envelope_id: str, code: str, kind: SealKind) -> None:
        """A party seals its field of the envelope."""
        body = self.bodies[code]
        seal_step(
            self.services,
            envelope_id=envelope_id,
            seal_id=body.seals[kind.value],
            actor=body.actor,
            client_id=body.client_id,
        )

    def decline(self, envelope_id: str, code: str) -> None:
        """A party declines the envelope, with its reason."""
        reason = pick(self.rng, (("材料不全，请补正后重新提交", 3), ("合同条款有异议", 1)))
        decline(
            self.services, envelope_id=envelope_id, reason=reason, actor=self.bodies[code].actor
        )


def _at(day: date, hour: float) -> datetime:
    """``hour`` (fractional) of ``day`` in China Standard Time, to the second."""
    return datetime(day.year, day.month, day.day, tzinfo=CHINA) + timedelta(
        seconds=round(hour * 3600)
    )


def _office_of(when: datetime) -> datetime:
    """``when`` moved to the next office hour (9:00 on a workday) if it falls outside them."""
    local = when.astimezone(CHINA)
    while local.weekday() >= 5 or not 9 <= local.hour < 17:
        local = _at(local.date() + timedelta(days=1 if local.hour >= 9 else 0), 9.25)
    return local


def summarise(services: Services) -> dict[str, int]:
    """The registry's records counted by kind, in a stable order."""
    counts: dict[str, int] = {}
    with services.sessions() as session:

        def count(prefix: str, *columns: Any) -> None:
            for row in session.execute(select(*columns, func.count()).group_by(*columns)):
                counts[".".join([prefix, *map(str, row[:-1])])] = row[-1]

        count("certificates", Certificate.type_code, Certificate.status)
        count("status_events", StatusEvent.to_status)
        count("envelopes", Envelope.status)
        count("uses", UsageRecord.action, UsageRecord.result)
        count("warnings", SupervisionWarning.rule_id)
        for row in session.execute(
            select(ScanCount.verdict, func.sum(ScanCount.count)).group_by(ScanCount.verdict)
        ):
            counts[f"scans.{row[0]}"] = int(row[1])
        for name, model in (
            ("consents", Consent),
            ("sealed_documents", SealedDocument),
            ("audit_events", AuditEvent),
            ("outbox_events", OutboxEvent),
        ):
            counts[name] = session.scalar(select(func.count()).select_from(model)) or 0
        issued = session.scalars(select(Certificate.issued_at)).all()
        counts["issuance_days"] = len({at.astimezone(CHINA).date() for at in issued})
    return dict(sorted(counts.items()))


def seed(settings: Settings, *, days: int, scale: float, seed: int, end: date) -> dict[str, int]:
    """Initialise the registry of ``settings`` and walk ``days`` days before ``end``; return
    :func:`summarise`'s counts."""
    first = end - timedelta(days=days)
    clock = SimulatedClock(_at(first - timedelta(days=1), 9))
    services = Services(settings, clock=clock)
    try:
        initialise(services)
        walk = Walk(services, clock, seed=seed, scale=scale)
        walk.set_up()
        walk.walk(first, days)
        return summarise(services)
    finally:
        services.dispose()


def main(argv: list[str] | None = None) -> dict[str, int]:
    """The command line: seed, print the counts per kind and the time taken."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.seed_supervision", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="a new data directory")
    parser.add_argument(
        "--database-url", help="an empty database (default: SQLite in the data directory)"
    )
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every rate")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--end", type=date.fromisoformat, help="the day after the last one walked (default: today)"
    )
    args = parser.parse_args(argv)
    if args.days < 1 or args.scale <= 0:
        parser.error("--days is at least 1 and --scale above 0")
    if args.data_dir.exists() and any(args.data_dir.iterdir()):
        sys.exit(f"{args.data_dir} is not empty: the seeded registry needs a new data directory.")
    overrides: dict[str, Any] = {"data_dir": args.data_dir}
    if args.database_url:
        overrides["database_url"] = args.database_url
    settings = Settings(**overrides)
    end = args.end or datetime.now(CHINA).date()
    started = time.perf_counter()
    try:
        counts = seed(settings, days=args.days, scale=args.scale, seed=args.seed, end=end)
    except EContractError as exc:
        sys.exit(f"seeding failed: {exc}")
    for kind, n in counts.items():
        print(f"{kind:40} {n:8d}")
    print(f"{args.days} days to {end - timedelta(days=1)} in {time.perf_counter() - started:.1f} s")
    return counts


if __name__ == "__main__":
    main()
