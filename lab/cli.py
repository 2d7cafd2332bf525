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
        add_completion=False,
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


def main() -> None:
    app = build_app()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
