"""``econtract grants``: the use list (用证清单) — which department may use which licence type
for which matters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from econtract.cli._app import JsonOption, _group, app, emit, operator, use_case

if TYPE_CHECKING:
    from econtract import sharing

grants_app = _group("The use list: which department may use which licence type, for what.")
app.add_typer(grants_app, name="grants")


@grants_app.command("add")
def grants_add(
    department: Annotated[str, typer.Option(help="The using department's credit code.")],
    type_code: Annotated[
        str, typer.Option("--type", help="The licence type's code, as GET /v1/catalogue lists it.")
    ],
    matter: Annotated[
        list[str], typer.Option(help="A matter (事项) the type may be used for; repeat for more.")
    ],
    requires_consent: Annotated[
        bool | None,
        typer.Option(
            "--requires-consent/--no-requires-consent",
            help="Whether each use needs the holder's consent; by default yes for a type a "
            "citizen may hold.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Grant a department the use of a licence type for the matters named."""
    from econtract import sharing

    with use_case() as (services, session):
        grant = sharing.add_grant(
            session,
            department_code=department,
            type_code=type_code,
            matters=matter,
            requires_consent=requires_consent,
            actor=operator(),
            clock=services.clock,
        )
    emit(as_json, [_row(grant, as_json)], title="grant added", single=True)


@grants_app.command("list")
def grants_list(
    department: Annotated[str | None, typer.Option(help="Only this department's grants.")] = None,
    include_revoked: Annotated[
        bool, typer.Option("--all", help="Revoked grants too.", show_default=False)
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List the grants that stand (with --all, the revoked ones too)."""
    from econtract import sharing

    with use_case() as (_, session):
        grants = sharing.list_grants(
            session, department_code=department, include_revoked=include_revoked
        )
    emit(as_json, [_row(g, as_json) for g in grants], title="grants")


@grants_app.command("revoke")
def grants_revoke(
    grant: Annotated[str, typer.Argument(metavar="GRANT_ID", help="The grant's id.")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a grant: the department may no longer use the type."""
    from econtract import sharing

    with use_case() as (services, session):
        revoked = sharing.revoke_grant(
            session, grant_id=grant, actor=operator(), clock=services.clock
        )
    emit(as_json, [_row(revoked, as_json)], title="grant revoked", single=True)


def _row(grant: sharing.GrantView, as_json: bool) -> dict[str, object]:
    row = grant.to_json()
    if not as_json:
        # A table cell shows the matters one per line rather than as a Python list.
        row["matters"] = "\n".join(grant.matters)
    return row
