"""``drill``: the proving ground's command line.

This file only builds the typer app. Each command lives in its own module under
``lab/commands/`` and exposes ``register(app)``; every such module is picked up here, so a
new command (``drill run``, ``drill chaos``) is a new file, never an edit of this one. A
module that fails to import makes ``drill`` fail loudly rather than lose a command quietly.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from typing import cast

import typer

import lab.commands

Register = Callable[[typer.Typer], None]


class CommandModuleError(RuntimeError):
    """A module in lab/commands/ has no ``register(app)``."""


def command_modules() -> list[str]:
    """Names of the modules in lab/commands/, sorted so ``--help`` lists commands stably."""
    return sorted(
        f"{lab.commands.__name__}.{info.name}"
        for info in pkgutil.iter_modules(lab.commands.__path__)
        if not info.name.startswith("_")
    )


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="drill",
        help=(
            "The proving ground of the product importer: start the local stack (up/down/status), "
            "run load and chaos drills, and judge them (report)."
        ),
        no_args_is_help=True,
        # `drill --install-completion` completes commands, enum choices (--gate, --topology,
        # --suite), scenarios and experiments in the shell.
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",  # rewraps docstring paragraphs instead of keeping their line breaks
    )

    @app.callback()
    def _root() -> None:
        """Keep ``drill`` a command group even if a single command were registered."""

    for name in command_modules():
        module = importlib.import_module(name)
        register = getattr(module, "register", None)
        if not callable(register):
            raise CommandModuleError(f"{name} has no register(app) function; every lab/commands module needs one")
        cast(Register, register)(app)
    return app


OWN_PACKAGES = frozenset({"importer", "lab", "chaos", "loadtests", "reports"})


class MissingLabExtra(SystemExit):
    """``drill`` runs in an install without the proving ground's libraries (``pip install .``)."""


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """What to do when a command module needs a library the install lacks; None for our own bugs.

    ``pip install .`` installs the service alone (its console script ``drill`` included); the
    harness's libraries (Locust, pandas, matplotlib, moto, ...) are the ``lab`` extra.
    """
    top = (exc.name or "").split(".")[0]
    if not top or top in OWN_PACKAGES:
        return None
    return (
        f"drill: the Python package {top!r} is missing. drill is the proving ground, the `lab` extra of "
        "product-importer: install it with `pip install '.[lab]'` (or run scripts/setup.sh)."
    )


def main() -> None:
    try:
        app = build_app()
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc)
        if message is None:
            raise
        raise MissingLabExtra(message) from exc
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
