"""Named failures of the local stack, each with a message an operator can act on."""

from __future__ import annotations

from pathlib import Path


class StackError(Exception):
    """Base of every error the local stack raises on purpose."""


class BinaryNotFoundError(StackError):
    """A program the stack runs is not installed; the message says how to install it."""

    def __init__(self, program: str, install_hint: str, looked_in: list[str]) -> None:
        self.program = program
        self.install_hint = install_hint
        self.looked_in = looked_in
        places = ", ".join(looked_in) if looked_in else "PATH"
        super().__init__(f"{program} not found (looked in {places}); install it with: {install_hint}")


class PortUnavailableError(StackError):
    """No free loopback port could be found within the allowed attempts."""


class ComponentStartError(StackError):
    """A component exited or never became healthy; carries its name and the tail of its log."""

    def __init__(self, component: str, reason: str, log_path: Path | None = None, log_tail: str = "") -> None:
        self.component = component
        self.reason = reason
        self.log_path = log_path
        self.log_tail = log_tail
        message = f"{component} did not start: {reason}"
        if log_path is not None:
            message += f"\n--- last lines of {log_path} ---\n{log_tail.rstrip() or '(log is empty)'}"
        super().__init__(message)


class StackAlreadyRunningError(StackError):
    """A stack recorded in the run directory still has live processes."""


class RunDirError(StackError):
    """The run directory cannot be used (foreign content, unreadable stack.json, bad permissions)."""
