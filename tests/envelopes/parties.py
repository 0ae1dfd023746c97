"""The parties of the envelope tests: the demo department and enterprises, each with a seal
of its own, and the contract they seal (both enterprises in parallel, then the department)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from econtract import audit, db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.enterprises import add_enterprise
from econtract.envelopes import EnvelopeRequest, PartySpec, StepSpec
from econtract.models import Department, SealKind
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from keys.handles import KeyAlgorithm
from tests.factories import OPERATOR

ENTERPRISE_A = "9133010052CL12THX9"
ENTERPRISE_B = "9133100015J1YG617W"
OTHER = "9133040016D272HD32"
#: The enterprises' names, by credit code.
NAMES = {
    ENTERPRISE_A: "杭州远航建设工程有限公司",
    ENTERPRISE_B: "台州瑞丰科技有限公司",
    OTHER: "嘉兴润泽餐饮管理有限公司",
}


@dataclass(frozen=True)
class Party:
    """A party as the tests drive it: its actor and its seal."""

    code: str
    actor: audit.Actor
    seal: str


def make_party(services: Services, code: str, kind: SealKind = SealKind.CONTRACT) -> Party:
    """A seal of ``kind`` for the body ``code`` (an enterprise of :data:`NAMES` is added
    first), and the actor of that body's client."""
    with db.transaction(services.sessions) as session:
        if code in NAMES:
            add_enterprise(session, code=code, name=NAMES[code], actor=OPERATOR)
        seal = create_seal(
            session,
            request=SealRequest(department_code=code, kind=kind, algorithm=KeyAlgorithm.EC_P256),
            key_store=services.key_store,
            pki=services.pki,
            actor=OPERATOR,
            clock=services.clock,
        )
        body = session.scalars(select(Department).where(Department.code == code)).one()
        return Party(code, audit.Actor(name=f"client:{code}", department_id=body.id), seal.id)


def make_parties(services: Services, *, other: bool = True) -> dict[str, Party]:
    """The demo department (``dept``, an official seal), enterprises ``a`` and ``b`` and, with
    ``other``, an enterprise that is no party."""
    parties = {
        "dept": make_party(services, DEMO_DEPARTMENT_CODE, SealKind.OFFICIAL),
        "a": make_party(services, ENTERPRISE_A),
        "b": make_party(services, ENTERPRISE_B),
    }
    if other:
        parties["other"] = make_party(services, OTHER)
    return parties


def contract_request(seal_id: str, first: datetime, second: datetime) -> EnvelopeRequest:
    """A purchase contract: enterprises A and B seal in parallel by ``first``, then the demo
    department (whose seal ``seal_id`` opens the envelope) by ``second``."""
    return EnvelopeRequest(
        title="政府采购合同",
        seal_id=seal_id,
        steps=(
            StepSpec(
                parties=(
                    PartySpec(code=ENTERPRISE_A, field="PartyA", x=150),
                    PartySpec(code=ENTERPRISE_B, field="PartyB", x=300),
                ),
                deadline=first,
            ),
            StepSpec(
                parties=(PartySpec(code=DEMO_DEPARTMENT_CODE, field="Buyer", x=450),),
                deadline=second,
            ),
        ),
    )
