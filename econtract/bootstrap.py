"""``econtract init`` (also run by every ``econtract serve``): schema, development PKI, the
sweep of blobs a crashed process left staged, and a demo department, idempotently."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from econtract import audit, db
from econtract.blobs import SweepReport
from econtract.departments import add_department
from econtract.issuance import ensure_certificate_types
from econtract.models import Certificate, Department, Seal, SealedDocument, SealKind
from econtract.pki import bootstrap_pki
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from keys.handles import KeyAlgorithm

log = logging.getLogger(__name__)

#: The demo department created on first start (a synthetic, well-formed credit code).
DEMO_DEPARTMENT_CODE = "11330100002502899U"
DEMO_DEPARTMENT_NAME = "杭州市市场监督管理局"
#: The demo department's seals: a licence seal and an official seal.
DEMO_SEALS = ((SealKind.LICENCE, KeyAlgorithm.RSA_2048), (SealKind.OFFICIAL, KeyAlgorithm.EC_P256))


@dataclass
class InitReport:
    """What ``initialise`` did."""

    authorities_created: list[str] = field(default_factory=list)
    """Names of the PKI authorities created now."""
    department_created: bool = False
    """Whether the demo department was created now."""
    seals_created: list[str] = field(default_factory=list)
    """Ids of the demo seals created now."""
    sweep: SweepReport = field(default_factory=SweepReport)
    """What the sweep of staged blobs left by dead writers did."""


def initialise(services: Services, *, demo: bool = True) -> InitReport:
    """Apply migrations, create the PKI, settle staged blobs (:func:`sweep_blobs`) and (with
    ``demo``) create the demo department and seals."""
    services.settings.data_dir.mkdir(parents=True, exist_ok=True)
    db.upgrade(services.engine)
    report = InitReport()
    actor = audit.Actor.operator("init")
    with db.transaction(services.sessions) as session:
        report.authorities_created = bootstrap_pki(session, services.key_store, services.settings)
        ensure_certificate_types(session)
    report.sweep = sweep_blobs(services)
    if demo:
        _create_demo(services, report, actor)
    return report


def sweep_blobs(services: Services) -> SweepReport:
    """Finish the sealed files a crashed process registered but had not moved into the blob
    store yet, and remove those nothing registered (:func:`econtract.blobs.sweep_staged`)."""

    def is_registered(sha256: str) -> bool:
        with services.sessions() as session:
            return any(
                session.scalar(select(model.id).where(model.pdf_sha256 == sha256).limit(1))
                for model in (Certificate, SealedDocument)
            )

    report = services.blobs.sweep(is_registered)
    if report.published or report.removed:
        log.warning(
            "staged blobs of a crashed process settled",
            extra={"published": list(report.published), "removed": report.removed},
        )
    return report


def _create_demo(services: Services, report: InitReport, actor: audit.Actor) -> None:
    with db.transaction(services.sessions) as session:
        department = session.scalar(
            select(Department).where(Department.code == DEMO_DEPARTMENT_CODE)
        )
        if department is None:
            department = add_department(
                session,
                code=DEMO_DEPARTMENT_CODE,
                name=DEMO_DEPARTMENT_NAME,
                region=None,
                actor=actor,
            )
            report.department_created = True
        kinds = set(session.scalars(select(Seal.kind).where(Seal.department_id == department.id)))
        for kind, algorithm in DEMO_SEALS:
            if kind.value in kinds:
                continue
            seal = create_seal(
                session,
                request=SealRequest(
                    department_code=department.code, kind=kind, algorithm=algorithm
                ),
                key_store=services.key_store,
                pki=services.pki,
                actor=actor,
                clock=services.clock,
            )
            report.seals_created.append(seal.id)
