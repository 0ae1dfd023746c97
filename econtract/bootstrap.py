"""``econtract init`` (also run by every ``econtract serve``): schema, development PKI, the
sweep of blobs a crashed process left staged, and a demo department, idempotently."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from econtract import audit, db
from econtract.blobs import SweepReport
from econtract.departments import add_department
from econtract.filemodes import make_private_dir, restrict_file, restrict_tree
from econtract.issuance import ensure_certificate_types
from econtract.models import (
    Certificate,
    Department,
    Seal,
    SealedDocument,
    SealKind,
    SealStatus,
)
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

#: The suffixes of SQLite's files: the database, its write-ahead log and shared memory.
_SQLITE_FILES = ("", "-wal", "-shm")


@dataclass
class InitReport:
    """What ``initialise`` did."""

    authorities_created: list[str] = field(default_factory=list)
    """Names of the PKI authorities created now."""
    department_created: bool = False
    """Whether the demo department was created now."""
    seals_created: list[str] = field(default_factory=list)
    """Ids of the demo seals created now."""
    platform_seal_created: str | None = None
    """The id of the platform seal (电子证照共享专用章), when it was created now."""
    sweep: SweepReport = field(default_factory=SweepReport)
    """What the sweep of staged blobs left by dead writers did."""
    restricted: list[Path] = field(default_factory=list)
    """Files and directories of the data directory whose modes were made private now."""


def initialise(services: Services, *, demo: bool = True) -> InitReport:
    """Apply migrations, create the PKI, settle staged blobs (:func:`sweep_blobs`) and (with
    ``demo``) create the demo department and seals."""
    data_dir = services.settings.data_dir
    make_private_dir(data_dir)
    # A data directory made before its files were kept private, or restored with other
    # modes, is brought into line at every start.
    report = InitReport(restricted=restrict_tree(data_dir))
    if db.is_embedded(services.engine) and services.engine.url.database:
        database = Path(services.engine.url.database)
        for suffix in _SQLITE_FILES:
            path = database.with_name(database.name + suffix)
            if restrict_file(path):
                report.restricted.append(path)
    db.upgrade(services.engine)
    actor = audit.Actor.operator("init")
    with db.transaction(services.sessions) as session:
        report.authorities_created = bootstrap_pki(session, services.key_store, services.settings)
        ensure_certificate_types(session)
    report.sweep = sweep_blobs(services)
    report.platform_seal_created = _create_platform_seal(services, actor)
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


def _create_platform_seal(services: Services, actor: audit.Actor) -> str | None:
    """The platform body (the department named by ``platform_code``) and its platform seal,
    which seals annotated copies (加注件); created once, and on the first ``init`` after an
    upgrade for a registry that predates them. Returns the new seal's id, if one was made."""
    settings = services.settings
    with db.transaction(services.sessions) as session:
        body = session.scalar(select(Department).where(Department.code == settings.platform_code))
        if body is None:
            body = add_department(
                session,
                code=settings.platform_code,
                name=settings.platform_name,
                region=None,
                actor=actor,
            )
        existing = session.scalar(
            select(Seal.id).where(
                Seal.department_id == body.id,
                Seal.kind == SealKind.PLATFORM.value,
                Seal.status == SealStatus.ACTIVE.value,
            )
        )
        if existing is not None:
            return None
        seal = create_seal(
            session,
            request=SealRequest(
                department_code=body.code, kind=SealKind.PLATFORM, algorithm=KeyAlgorithm.EC_P256
            ),
            key_store=services.key_store,
            pki=services.pki,
            actor=actor,
            clock=services.clock,
        )
        return seal.id


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
