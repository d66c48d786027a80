"""Shared pieces of the CLI: consoles, the expected-error handler, list-option parsing."""

from __future__ import annotations

import signal

import typer
from rich.console import Console

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXPECTED_ERRORS = (ValueError, FileNotFoundError, ImportError)


def print_table(table: object) -> None:
    """A rich table on the terminal; in a file or pipe the whole table, not one squeezed into
    80 columns with every cell cut."""
    (console if console.is_terminal else Console(width=240, soft_wrap=True)).print(table)


def exit_on_sigterm() -> None:
    """Turn SIGTERM (``kill PID``) into SystemExit, so that the ``except BaseException`` blocks
    around pacemaker and mace_run_train stop them too instead of leaving them running orphaned."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)  # entry points only: they run in the main thread


def split_names(values: list[str] | None) -> list[str] | None:
    """``--x a,b --x c`` and ``--x "a b"`` -> ``[a, b, c]``."""
    if not values:
        return None
    return [n.strip() for v in values for n in v.replace(",", " ").split() if n.strip()]


def fail(exc: BaseException) -> None:
    """Print an expected error as one line and exit with code 2."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors():
            where = ".".join(map(str, e["loc"]))  # empty for a check of the whole config
            text = e["msg"].removeprefix("Value error, ")
            parts.append(f"{where}: {text}" if where else text)
        msg = "; ".join(parts)
    else:
        msg = str(exc)
    err.print(f"[bold red]error:[/] {msg}", highlight=False)
    raise typer.Exit(code=2)
