"""The chaos experiments, by name, with their parameters (standard and quickest forms)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaos.experiments.base import ChaosExperiment, RunContext
from chaos.experiments.db_partition import DbPartition, PartitionParams
from chaos.experiments.long_outage import LongOutage, LongOutageParams
from chaos.experiments.overload import Overload, OverloadParams
from chaos.experiments.provider_outage import OutageParams, ProviderOutage
from chaos.experiments.redis_failover import FailoverParams, RedisFailover
from chaos.experiments.worker_kill import WorkerKill, WorkerKillParams
from chaos.experiments.worker_term import WorkerTerm, WorkerTermParams


@dataclass(frozen=True)
class Entry:
    cls: type[ChaosExperiment]
    params: type[Any]

    def standard(self) -> Any:
        return self.params()

    def quick(self) -> Any:
        return self.params.quick()


EXPERIMENTS: dict[str, Entry] = {
    "redis-failover": Entry(RedisFailover, FailoverParams),
    "worker-kill": Entry(WorkerKill, WorkerKillParams),
    "worker-term": Entry(WorkerTerm, WorkerTermParams),
    "provider-outage": Entry(ProviderOutage, OutageParams),
    "overload": Entry(Overload, OverloadParams),
    "long-outage": Entry(LongOutage, LongOutageParams),
    "db-partition": Entry(DbPartition, PartitionParams),
}
"""In suite order: the longest (db-partition) last, overload apart from the failover; long-outage
before db-partition (both cut Postgres; each heals and settles before it ends)."""

__all__ = ["EXPERIMENTS", "ChaosExperiment", "Entry", "RunContext"]
