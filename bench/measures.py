"""Figures of a benchmark run: a plan, measures over several runs, scenarios and the
comparisons (teledrop / baseline) that are its headline."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from bench.common import MiB
from bench.procfs import Usage


@dataclass
class Plan:
    big: int
    rss_sizes: list[int]
    reps: int
    settle: float = 1.0
    ranges: int = 1000
    range_span: int = MiB
    small_count: int = 2000
    concurrent: int = 16
    concurrent_size: int = 64 * MiB


@dataclass
class Measure:
    """One figure for one subject over several runs."""

    unit: str
    cpu_unit: str = "s/GiB"
    values: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    user_s: list[float] = field(default_factory=list)
    faults: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float:
        return statistics.median(self.values)

    def add_cpu(self, usage: Usage, per: float) -> None:
        """Server CPU of one run, scaled to ``cpu_unit`` (``per`` runs of it per unit)."""
        self.cpu_s.append(usage.total_cpu_s * per)
        self.user_s.append(usage.total_user_s * per)
        self.faults.append(usage.total_faults * per)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": self.unit, "median": round(self.value, 1),
                               "runs": [round(v, 1) for v in self.values]}
        if self.rss_mib:
            out["peak_rss_mib"] = round(max(self.rss_mib), 1)
        if self.cpu_s:
            out["server_cpu"] = round(statistics.median(self.cpu_s), 2)
            out["server_user_cpu"] = round(statistics.median(self.user_s), 2)
            out["server_minor_faults"] = round(statistics.median(self.faults))
            out["server_cpu_unit"] = self.cpu_unit
        return out | self.extra


@dataclass
class Comparison:
    baseline: str
    target: float | None = None  # teledrop / baseline must reach this
    note: str = ""


@dataclass
class Scenario:
    key: str
    title: str
    teledrop: Measure
    baselines: dict[str, Measure] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ratio(self, name: str) -> float:
        return self.teledrop.value / self.baselines[name].value

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "title": self.title, "teledrop": self.teledrop.as_json(),
            "baselines": {name: m.as_json() for name, m in self.baselines.items()},
            "ratios": {c.baseline: {"ratio": round(self.ratio(c.baseline), 3),
                                    "target": c.target} for c in self.comparisons},
            "notes": self.notes,
        }
