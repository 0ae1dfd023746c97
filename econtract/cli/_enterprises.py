"""``econtract enterprises``: enterprises that seal with e-seals of their own."""

from __future__ import annotations

from typing import Annotated

import typer

from econtract.cli._app import JsonOption, _group, app, emit, operator, use_case
from econtract.cli._registry import department_row

enterprises_app = _group("Enterprises that seal contracts with e-seals the service holds for them.")
app.add_typer(enterprises_app, name="enterprises")


@enterprises_app.command("add")
def enterprises_add(
    code: Annotated[str, typer.Option(help="Unified social credit code (18 characters).")],
    name: Annotated[str, typer.Option(help="The enterprise's name, as on its seal.")],
    as_json: JsonOption = False,
) -> None:
    """Register an enterprise (its seals: `seals create --enterprise CODE`; its system's
    client: `clients create --enterprise CODE --scopes sign`)."""
    from econtract import enterprises

    with use_case() as (_, session):
        e = enterprises.add_enterprise(session, code=code, name=name, actor=operator())
        row = department_row(e)
    emit(as_json, [row], title="enterprise added", single=True)


@enterprises_app.command("list")
def enterprises_list(as_json: JsonOption = False) -> None:
    """List enterprises."""
    from econtract import enterprises

    with use_case() as (_, session):
        rows = [department_row(e) for e in enterprises.list_enterprises(session)]
    emit(as_json, rows, title="enterprises")
