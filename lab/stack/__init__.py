"""The local stack: real processes on loopback, on free ports, owned and stopped by one object.

``Stack`` composes the components (``PostgresServer``, ``RedisServer``, ``MotoS3``,
``FakeProvider``, the importer's processes); each component also works on its own, which is
how the test fixtures start just the service a test needs. ``drill up/down/status`` are the
command-line face of this package (lab/commands/stack.py).
"""

from lab.stack.errors import (
    BinaryNotFoundError,
    ComponentStartError,
    PortUnavailableError,
    RunDirError,
    StackAlreadyRunningError,
    StackError,
)
from lab.stack.info import StackInfo, load_info, save_info
from lab.stack.ports import PortAllocator, free_port
from lab.stack.postgres import PostgresServer
from lab.stack.process import ManagedProcess, ProcessRecord, StopOutcome
from lab.stack.provider import FakeProvider
from lab.stack.redis import RedisServer
from lab.stack.s3 import MotoS3
from lab.stack.stack import ProgressEvent, Stack, StackConfig, WorkerHandle

__all__ = [
    "BinaryNotFoundError",
    "ComponentStartError",
    "FakeProvider",
    "ManagedProcess",
    "MotoS3",
    "PortAllocator",
    "PortUnavailableError",
    "PostgresServer",
    "ProcessRecord",
    "ProgressEvent",
    "RedisServer",
    "RunDirError",
    "Stack",
    "StackAlreadyRunningError",
    "StackConfig",
    "StackError",
    "StackInfo",
    "StopOutcome",
    "WorkerHandle",
    "free_port",
    "load_info",
    "save_info",
]
