"""``econtract keys rewrap``: bring the file key store's files up to the current encryption.

Key files written before the store used OWASP's PBKDF2 count (or under an old passphrase) are
re-encrypted in place, one atomic replacement each; files already current are left alone, so
the command can be run again at any time.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from econtract.cli._app import JsonOption, _group, app, emit, load_settings
from econtract.errors import EContractError

#: The variable a new passphrase is read from, so it never appears in a process listing.
NEW_PASSPHRASE_VARIABLE = "ECONTRACT_NEW_KEY_PASSPHRASE"  # noqa: S105 (a variable's name)

keys_app = _group("The file key store.")
app.add_typer(keys_app, name="keys")


@keys_app.command("rewrap")
def keys_rewrap(
    new_passphrase: Annotated[
        bool,
        typer.Option(
            "--new-passphrase",
            help=f"Encrypt with a new passphrase, read from {NEW_PASSPHRASE_VARIABLE} or "
            "asked for; set ECONTRACT_KEY_PASSPHRASE to it afterwards.",
            show_default=False,
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Re-encrypt the key files whose parameters or passphrase are not the current ones."""
    from keys.filestore import FileKeyStore

    settings = load_settings()
    if settings.key_store != "file":
        raise EContractError("The keys live in a PKCS#11 token; there are no key files.")
    passphrase = _new_passphrase() if new_passphrase else None
    store = FileKeyStore.open(settings.key_store_config())
    report = store.rewrap(new_passphrase=passphrase)
    rows = [{"key": label, "rewrapped": True} for label in report.changed]
    rows += [{"key": label, "rewrapped": False} for label in report.current]
    emit(as_json, rows, title=f"{len(report.changed)} of {len(rows)} key files rewrapped")


def _new_passphrase() -> str:
    value = os.environ.get(NEW_PASSPHRASE_VARIABLE)
    if value is None:
        value = typer.prompt("New key passphrase", hide_input=True, confirmation_prompt=True)
    if len(value) < 12:
        raise EContractError("The new passphrase is too short; give at least 12 characters.")
    return value
