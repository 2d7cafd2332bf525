"""Progress lines while a chaos drill runs: which experiment, which phase, how long it has been going.

A chaos suite runs for many minutes with nothing visible happening between faults; one line
per step tells the person watching that it is alive and where it is. The writer is the one
``drill run`` uses (lab.progress.ProgressLog): the same ``[elapsed] where: message`` lines,
on stderr, in both commands.
"""

from __future__ import annotations

from lab.progress import ProgressLog as Progress

__all__ = ["Progress"]
