"""The benchmark's report: the table of figures and ratios, and py-spy's top frames."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from bench.measures import Measure, Scenario


def top_frames(path: Path, count: int = 12) -> list[tuple[float, str]]:
    """Self time per function (line numbers merged) from py-spy's raw output, in percent
    of the samples taken while a worker thread was running."""
    self_time: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        leaf = stack.split(";")[-1]
        name, _, where = leaf.partition(" (")
        self_time[f"{name} ({where.split(':')[0].rstrip(')')})"] += int(n)
        total += int(n)
    return [(round(100 * n / total, 1), frame) for frame, n in self_time.most_common(count)]


def cpu_cell(m: Measure) -> str:
    if not m.cpu_s:
        return ""
    return f"{statistics.median(m.cpu_s):.2f} ({statistics.median(m.user_s):.2f}) {m.cpu_unit}"


def table(scenarios: list[Scenario]) -> str:
    """One row per (scenario, baseline): teledrop's figure, its server CPU (total, and user
    in brackets) and peak worker RSS, then the baseline's, and the ratio
    teledrop / baseline against the issue's target."""
    head = ("scenario", "teledrop", "CPU", "peak RSS", "baseline", "baseline value", "CPU",
            "ratio", "target")
    rows = [head]
    for sc in scenarios:
        t = sc.teledrop
        mine = (f"{sc.key} {sc.title}", f"{t.value:,.1f} {t.unit}", cpu_cell(t),
                f"{max(t.rss_mib):.1f} MiB" if t.rss_mib else "")
        for comp in sc.comparisons:
            b = sc.baselines[comp.baseline]
            ratio = sc.ratio(comp.baseline)
            target = "" if comp.target is None else \
                f">= {comp.target:g} {'ok' if ratio >= comp.target else 'MISSED'}"
            value = f"{b.value:,.1f} {b.unit}" + (f" ({max(b.rss_mib):.1f} MiB)"
                                                 if b.rss_mib and b is not t else "")
            rows.append((*mine, comp.baseline, value, cpu_cell(b), f"{ratio:.2f}", target))
            mine = ("", "", "", "")
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
