"""The ``econtract`` command line: the operator's door to the same use cases as the API.

One module per group of commands; each imports the domain inside its commands, so that help
and usage errors answer at once (see :mod:`econtract.cli._app`).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import typer
from typer.exceptions import TyperException

from econtract.cli._app import EXIT_ERROR, EXIT_USAGE, CommandUsageError, app
from econtract.errors import EContractError
from econtract.logs import configure_cli_logging

__all__ = ["EXIT_ERROR", "EXIT_USAGE", "app", "main", "run"]

# Importing a command module registers its commands on ``app``; help lists them in this order.
for _module in (
    "_setup",
    "_documents",
    "_verify",
    "_ses",
    "_registry",
    "_enterprises",
    "_audit",
    "_grants",
    "_sharing",
    "_webhooks",
    "_keys",
    "_backup",
    "_worker",
    "_blobs",
    "_users",
    "_reports",
    "_supervision",
):
    importlib.import_module(f"econtract.cli.{_module}")


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status; errors are one line on stderr."""
    # Log records (pyHanko's tracebacks among them) become JSON lines, libraries' only at
    # DEBUG, so that nothing but the one-line error reaches a person by default.
    configure_cli_logging()
    command = typer.main.get_command(app)
    try:
        # Outside standalone mode, click returns the code of a ``typer.Exit`` instead of
        # raising it.
        result = command.main(
            args=list(argv) if argv is not None else None,
            prog_name="econtract",
            standalone_mode=False,
        )
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return EXIT_ERROR
    except TyperException as exc:
        # Typer carries its own copy of click; every remaining error of it is a usage error.
        sys.stderr.write(f"usage error: {exc.format_message()}\n")
        return EXIT_USAGE
    except CommandUsageError as exc:
        sys.stderr.write(f"usage error: {exc.message}\n")
        return EXIT_USAGE
    except EContractError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return EXIT_ERROR
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
