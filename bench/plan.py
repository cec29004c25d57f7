"""What a benchmark run measures, how much of it, and the issue's targets."""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import Measure, Target

TASK_KINDS = {"sync": ("noop", "stamp"), "async": ("anoop", "astamp")}
"""Kind → (the no-op task drained, the task that records its start time)."""
PROCESS_COUNTS = (1, 2)
FLOW_VARIANTS = {
    "concurrency": "concurrency limit",
    "keyed": "1 per key, 100 keys",
    "rate": "rate limit 1M/s",
    "unique": "unique=True",
}
"""Flow control drained (1 process), each against the plain drain: variant → label.

The concurrency limit equals the worker's slots (one key); the keyed one is 1 per key over
100 keys; the rate limit is 1,000,000/s.

No limit needs to hold a task back (bench/tasks.py), so the rate lost is what the
gates or the unique index cost. The task of a kind and variant is ``flow_task(kind, variant)``.
"""
HISTORY_VARIANTS = ("concurrency", "rate")
"""The limited drains run again over the history (whose rows include theirs)."""
SCALE_KIND = "sync"
SCALE_PROCESS_COUNTS = (1, 2, 4, 8, 16)
"""The scale-out series: drains of the sync no-op with ``--processes N`` (1 and 2 are the plain drains)."""
SCALE_TARGET_PROCESSES = (8, 16)
"""The process counts whose drain must stay within 10 % of the series' best."""
HERD_PROCESS_COUNTS = (1, 16)
"""The herd measure: the sync ``stamp`` enqueued steadily to 1, then to 16, idle worker processes."""
HERD_RATIO = "herd_transactions_per_idle_process"
"""The transactions per task with the most idle processes divided by those with one."""


@dataclass(frozen=True)
class Plan:
    """Sizes of one run; ``quick()`` is a smoke run of well under a minute."""

    repeat: int = 3
    substrate_ops: int = 2000
    single_enqueues: int = 2000
    bulk_enqueues: int = 10_000
    bulk_chunk: int = 1000
    backlog: int = 10_000
    flow_backlog: int = 1000
    """Backlog of each flow-control drain: a gated claim takes one task per free slot, so they are slow."""
    history_rows: int = 1_000_000
    peer_backlog: int = 10_000
    """Backlog of each peer's drain (``--peers``)."""
    latency_rate: float = 20.0
    latency_seconds: float = 10.0
    herd_window: float | None = None
    """The herd's counting windows last a multiple of this; None: the workers' rescue interval."""
    concurrency: int | None = None

    @classmethod
    def quick(cls, concurrency: int | None = None) -> Plan:
        return cls(
            repeat=1,
            substrate_ops=200,
            single_enqueues=200,
            bulk_enqueues=2000,
            backlog=500,
            flow_backlog=200,
            history_rows=10_000,
            peer_backlog=1000,
            latency_seconds=1.5,
            herd_window=5.0,
            concurrency=concurrency,
        )


def drain_key(kind: str, processes: int, history: bool = False, variant: str = "") -> str:
    return f"drain_{kind}_p{processes}" + (f"_{variant}" if variant else "") + ("_history" if history else "")


def scale_key(processes: int) -> str:
    """The key of a scale-out drain's rate divided by the best rate of the series."""
    return f"scale_{SCALE_KIND}_p{processes}"


def herd_key(processes: int, metric: str) -> str:
    """The key of a herd measure's ``metric``: ``p50``, ``p99`` or ``transactions`` (per task)."""
    return f"herd_p{processes}_{metric}"


def flow_task(kind: str, variant: str) -> str:
    """Return the no-op task of ``kind`` behind the flow control ``variant`` (``anoop_rate``)."""
    return f"{TASK_KINDS[kind][0]}_{variant}"


def history_tasks() -> tuple[str, ...]:
    """Return the tasks whose finished rows make the history: ``noop``, and each limited drain's."""
    return ("noop", *(flow_task(kind, v) for kind in TASK_KINDS for v in HISTORY_VARIANTS))


def flat_key(kind: str, variant: str = "") -> str:
    return f"flat_{kind}" + (f"_{variant}" if variant else "")


def doubling_key(kind: str) -> str:
    """The key of a kind's 2-process drain rate divided by its 1-process one (medians)."""
    return f"doubling_{kind}"


def cost_key(kind: str, variant: str) -> str:
    """The key of a flow drain's rate divided by the plain drain's of the same round."""
    return f"flow_{kind}_{variant}"


def measures_of(plan: Plan) -> dict[str, Measure]:
    """Return every measure of a run, in the order the report lists them, with no runs yet."""
    history = _short_count(plan.history_rows)
    items = [
        Measure("raw_insert", "raw INSERT+COMMIT", "tasks/s"),
        Measure("raw_claim", "raw SKIP LOCKED claim+COMMIT", "tasks/s"),
        Measure("enqueue_single", "enqueue: add_task, 1 per call", "tasks/s"),
        Measure("enqueue_bulk", f"enqueue: add_tasks, {plan.bulk_chunk:,} per call", "tasks/s"),
    ]
    for kind in TASK_KINDS:
        for processes in PROCESS_COUNTS:
            items.append(
                Measure(drain_key(kind, processes), f"drain: {kind}, {_processes(processes)}", "tasks/s")
            )
    items += [Measure(doubling_key(kind), f"drain: 2 processes / 1: {kind}", "x") for kind in TASK_KINDS]
    items += _scale_measures()
    for kind in TASK_KINDS:
        items.append(
            Measure(
                drain_key(kind, 1, history=True), f"drain: {kind}, 1 process, {history} old rows", "tasks/s"
            )
        )
        items.append(Measure(flat_key(kind), f"drain with {history} old rows / empty: {kind}", "x"))
    items += _flow_measures(plan, history)
    for kind in TASK_KINDS:
        for pct in (50, 99):
            items.append(Measure(f"latency_{kind}_p{pct}", f"enqueue→start p{pct}: {kind}", "ms"))
    items += _herd_measures()
    for role in ("worker", "task child", "supervisor"):
        key = "rss_" + role.replace(" ", "_")
        items.append(Measure(key, f"peak RSS: {role}", "MB", statistic="max"))
    label = "peak summed RSS: a worker and its task processes"
    items.append(Measure("rss_worker_tree", label, "MB", statistic="max"))
    return {m.key: m for m in items}


def _scale_measures() -> list[Measure]:
    """The drains with more processes than the plain ones, then each rate of the series / the best."""
    items = [
        Measure(drain_key(SCALE_KIND, processes), f"drain: {SCALE_KIND}, {_processes(processes)}", "tasks/s")
        for processes in SCALE_PROCESS_COUNTS
        if processes not in PROCESS_COUNTS
    ]
    most = SCALE_PROCESS_COUNTS[-1]
    items += [
        Measure(scale_key(processes), f"drain: {_processes(processes)} / best of 1-{most}", "x")
        for processes in SCALE_PROCESS_COUNTS
    ]
    return items


def _herd_measures() -> list[Measure]:
    """Latency and database transactions per task with 1 and with 16 idle worker processes."""
    items = []
    for processes in HERD_PROCESS_COUNTS:
        idle = f"{_processes(processes)} idle"
        items += [
            Measure(herd_key(processes, "p50"), f"enqueue→start p50: {idle}", "ms"),
            Measure(herd_key(processes, "p99"), f"enqueue→start p99: {idle}", "ms"),
            Measure(herd_key(processes, "transactions"), f"transactions: {idle}", "per task"),
        ]
    one, most = HERD_PROCESS_COUNTS[0], HERD_PROCESS_COUNTS[-1]
    items.append(Measure(HERD_RATIO, f"transactions per task per idle process, {one} → {most}", "per task"))
    return items


def _processes(count: int) -> str:
    return f"{count} process{'es' if count > 1 else ''}"


def _flow_measures(plan: Plan, history: str) -> list[Measure]:
    """The flow control measures: unique enqueues, limited drains, and those over the history."""
    items = [
        Measure("enqueue_single_unique", "enqueue: add_task, unique=True", "tasks/s"),
        Measure("flow_enqueue_single", "enqueue with unique=True / without: add_task", "x"),
        Measure("enqueue_bulk_unique", "enqueue: add_tasks, unique=True", "tasks/s"),
        Measure("flow_enqueue_bulk", "enqueue with unique=True / without: add_tasks", "x"),
    ]
    for kind in TASK_KINDS:
        for variant, label in FLOW_VARIANTS.items():
            items.append(Measure(drain_key(kind, 1, variant=variant), f"drain: {kind}, {label}", "tasks/s"))
            items.append(Measure(cost_key(kind, variant), f"drain with {label} / without: {kind}", "x"))
    for kind in TASK_KINDS:
        for variant in HISTORY_VARIANTS:
            label = FLOW_VARIANTS[variant]
            key = drain_key(kind, 1, history=True, variant=variant)
            items.append(Measure(key, f"{kind}, {label}, {history} old rows", "tasks/s"))
            items.append(
                Measure(flat_key(kind, variant), f"{label}, {history} old rows / empty: {kind}", "x")
            )
    return items


def _short_count(count: int) -> str:
    """Return 1000000 as '1M', 20000 as '20k'."""
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    if count >= 1000 and count % 1000 == 0:
        return f"{count // 1000}k"
    return f"{count:,}"


def targets() -> list[Target]:
    """Return the issue's targets (``relative_to`` ratios are to the raw INSERT+COMMIT rate of the same run).

    Two processes drain at least 1.8x one. Scale-out: 8 and 16 processes drain within 10 % of
    the series' best. No thundering herd: each idle process pays one claim per enqueued task.
    """
    goals = [
        Target("enqueue_single", 0.8, relative_to="raw_insert"),
        Target("enqueue_bulk", 8.0, relative_to="raw_insert"),
    ]
    for kind in TASK_KINDS:
        goals += [Target(drain_key(kind, p), 1.0, relative_to="raw_insert") for p in PROCESS_COUNTS]
        goals += [Target(flat_key(kind, v), 0.8) for v in ("", *HISTORY_VARIANTS)]
        goals.append(Target(f"latency_{kind}_p50", 3.0, higher_is_better=False))
        goals.append(Target(f"latency_{kind}_p99", 6.0, higher_is_better=False))
        goals.append(Target(doubling_key(kind), 1.8))
    goals += [Target(scale_key(processes), 0.9) for processes in SCALE_TARGET_PROCESSES]
    # No thundering herd: a task wakes each idle worker for one claim (one transaction), nothing more.
    goals.append(Target(HERD_RATIO, 1.5, higher_is_better=False))
    goals += [
        Target(f"rss_{role}", 64.0, higher_is_better=False) for role in ("worker", "task_child", "supervisor")
    ]
    goals.append(Target("rss_worker_tree", 150.0, higher_is_better=False))
    return goals
