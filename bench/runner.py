"""The order of a benchmark run: every measure, repeated, then the drains over a large history."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from functools import partial
from typing import Any

from bench import measures, substrate, workers
from bench.peers.client import PeerBench
from bench.peers.table import peer_key
from bench.plan import (
    FLOW_VARIANTS,
    HERD_PROCESS_COUNTS,
    HERD_RATIO,
    HISTORY_VARIANTS,
    PROCESS_COUNTS,
    SCALE_KIND,
    SCALE_PROCESS_COUNTS,
    TASK_KINDS,
    Plan,
    cost_key,
    doubling_key,
    drain_key,
    flat_key,
    flow_task,
    herd_key,
    history_tasks,
    scale_key,
)
from bench.report import Measure, median, percentile, ratio, shares_of_best


class Runner:
    """Run every measure ``plan.repeat`` times, interleaved so that drift hits all alike."""

    def __init__(self, plan: Plan, measures: dict[str, Measure], peers: PeerBench | None = None) -> None:
        self.plan = plan
        self.measures = measures
        self.peers = peers
        self.errors: list[str] = []

    def run(self) -> list[str]:
        for round_number in range(1, self.plan.repeat + 1):
            _progress(f"round {round_number} of {self.plan.repeat}")
            self.round()
        self.history()
        self.series_ratios()
        measures.clear_tasks()
        return self.errors

    def attempt(self, name: str, func: Callable[[], Any]) -> Any:
        """Run one measure; on failure note it and go on with the others."""
        _progress(f"  {name}")
        try:
            return func()
        except Exception as exc:
            self.errors.append(f"{name}: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
            _progress(f"  {name} FAILED:\n{traceback.format_exc()}")
            return None

    def add(self, key: str, value: float | None) -> None:
        if value is not None:
            self.measures[key].runs.append(value)

    def round(self) -> None:
        plan = self.plan
        self.add("raw_insert", self.attempt("raw_insert", lambda: substrate.insert_rate(plan.substrate_ops)))
        self.add("raw_claim", self.attempt("raw_claim", lambda: substrate.claim_rate(plan.substrate_ops)))
        single = self.attempt("enqueue_single", lambda: measures.single_enqueue_rate(plan.single_enqueues))
        self.add("enqueue_single", single)
        bulk = self.attempt(
            "enqueue_bulk", lambda: measures.bulk_enqueue_rate(plan.bulk_enqueues, plan.bulk_chunk)
        )
        self.add("enqueue_bulk", bulk)
        plain = {}
        for kind in TASK_KINDS:
            for processes in PROCESS_COUNTS:
                plain[kind, processes] = self.drain(kind, processes, history=False)
        for processes in SCALE_PROCESS_COUNTS:
            if processes not in PROCESS_COUNTS:
                self.drain(SCALE_KIND, processes, history=False)
        self.flow_round(single, bulk, {kind: plain[kind, 1] for kind in TASK_KINDS})
        for kind in TASK_KINDS:
            self.latency(kind)
        for processes in HERD_PROCESS_COUNTS:
            self.herd(processes)
        for peer in self.peers.names if self.peers else ():
            self.peer_round(peer)

    def flow_round(self, single: float | None, bulk: float | None, drains: dict[str, float | None]) -> None:
        """Unique enqueues and limited drains, each divided by its plain twin of the same round."""
        plan = self.plan
        run_single = partial(measures.single_enqueue_rate, plan.single_enqueues, "noop_unique")
        rate = self.attempt("enqueue_single_unique", run_single)
        self.add("enqueue_single_unique", rate)
        self.add("flow_enqueue_single", ratio(rate, single))
        run_bulk = partial(measures.bulk_enqueue_rate, plan.bulk_enqueues, plan.bulk_chunk, "noop_unique")
        rate = self.attempt("enqueue_bulk_unique", run_bulk)
        self.add("enqueue_bulk_unique", rate)
        self.add("flow_enqueue_bulk", ratio(rate, bulk))
        for kind in TASK_KINDS:
            for variant in FLOW_VARIANTS:
                rate = self.drain(kind, 1, history=False, variant=variant)
                self.add(cost_key(kind, variant), ratio(rate, drains[kind]))

    def drain(self, kind: str, processes: int, history: bool, variant: str = "") -> float | None:
        key = drain_key(kind, processes, history, variant)
        if not history:
            measures.clear_tasks()
        task_name = flow_task(kind, variant) if variant else TASK_KINDS[kind][0]
        # The one concurrency limit equals the worker's slots: it admits every task a slot could take.
        limit = self.slots() if variant == "concurrency" else None
        plan = self.plan
        backlog = plan.flow_backlog if variant else plan.backlog
        run = partial(workers.drain, task_name, backlog, processes, plan.concurrency, limit)
        result = self.attempt(key, run)
        if result is None:
            return None
        self.add(key, result.rate)
        self.add_rss(result.rss_mb)
        return result.rate

    def slots(self) -> int:
        """The worker's concurrency: --concurrency, else the QTASKS setting."""
        from qtasks_django.conf import settings  # read once Django is set up (run.py)

        return self.plan.concurrency or int(settings.WORKER_CONCURRENCY)

    def latency(self, kind: str) -> None:
        plan = self.plan
        task_name = TASK_KINDS[kind][1]
        run = partial(workers.latency, task_name, plan.latency_rate, plan.latency_seconds, plan.concurrency)
        result = self.attempt(f"latency_{kind}", run)
        if result is None or not result.latencies_ms:
            return
        p50, p99 = workers.latency_percentiles(result)
        self.add(f"latency_{kind}_p50", p50)
        self.add(f"latency_{kind}_p99", p99)
        self.add_rss(result.rss_mb)

    def herd(self, processes: int) -> None:
        plan = self.plan
        task_name = TASK_KINDS["sync"][1]
        from qtasks_django.conf import settings  # read once Django is set up (run.py)

        window = plan.herd_window or float(settings.RESCUE_INTERVAL)
        run = partial(
            workers.herd,
            task_name,
            processes,
            plan.latency_rate,
            plan.latency_seconds,
            plan.concurrency,
            window,
        )
        result = self.attempt(f"herd_p{processes}", run)
        if result is None or not result.latencies_ms:
            return
        p50, p99 = workers.latency_percentiles(result)
        self.add(herd_key(processes, "p50"), p50)
        self.add(herd_key(processes, "p99"), p99)
        self.add(herd_key(processes, "transactions"), result.transactions_per_task)

    def series_ratios(self) -> None:
        """Each scale-out drain against the series' best, and the herd's transactions, from the medians."""
        for kind in TASK_KINDS:
            one, two = (self.measures[drain_key(kind, p)].value for p in (1, 2))
            self.add(doubling_key(kind), ratio(two, one))
        rates = {p: self.measures[drain_key(SCALE_KIND, p)].value for p in SCALE_PROCESS_COUNTS}
        for processes, share in shares_of_best(rates).items():
            self.add(scale_key(processes), share)
        fewest, most = HERD_PROCESS_COUNTS[0], HERD_PROCESS_COUNTS[-1]
        one, many = (self.measures[herd_key(p, "transactions")].value for p in (fewest, most))
        if one is not None and many is not None and one > 0 and many >= 0:  # below 0 is noise, not a cost
            # What each further idle worker costs an enqueued task: its wake-up's statements.
            self.add(HERD_RATIO, (many - one) / (most - fewest))

    def peer_round(self, peer: str) -> None:
        """The peer's measures of a round, each in the peer's virtualenv (``bench.peers``)."""
        plan, peers = self.plan, self.peers
        assert peers is not None
        key = partial(peer_key, peer)
        measured: dict[str, Callable[[], float | None]] = {
            "enqueue_single": partial(peers.enqueue_rate, peer, plan.single_enqueues),
            "enqueue_bulk": partial(peers.bulk_rate, peer, plan.bulk_enqueues, plan.bulk_chunk),
            **{
                f"drain_p{processes}": partial(peers.drain_rate, peer, plan.peer_backlog, processes)
                for processes in PROCESS_COUNTS
            },
        }
        for metric, run in measured.items():
            if key(metric) in self.measures:  # no bulk measure for a peer without a bulk enqueue
                self.add(key(metric), self.attempt(key(metric), run))
        samples = self.attempt(
            key("latency"), partial(peers.latencies_ms, peer, plan.latency_rate, plan.latency_seconds)
        )
        if samples:
            self.add(key("latency_p50"), percentile(samples, 50))
            self.add(key("latency_p99"), percentile(samples, 99))

    def add_rss(self, peaks: dict[str, float]) -> None:
        for role, peak in peaks.items():
            self.add("rss_" + role.replace(" ", "_"), peak)

    def history(self) -> None:
        """Drain again (1 process, plain and limited) with a large history of finished rows in the table."""
        measures.clear_tasks()
        rows = self.plan.history_rows
        _progress(f"history: inserting {rows:,} finished rows")
        newest = self.attempt("history rows", lambda: measures.insert_finished_rows(rows, history_tasks()))
        if newest is None:
            return
        variants = ("", *HISTORY_VARIANTS)
        for _ in range(self.plan.repeat):
            for kind in TASK_KINDS:
                for variant in variants:
                    measures.delete_newer_than(newest)
                    self.drain(kind, 1, history=True, variant=variant)
        for kind in TASK_KINDS:
            for variant in variants:
                loaded, empty = (self.measures[drain_key(kind, 1, h, variant)].runs for h in (True, False))
                if loaded and empty:
                    self.add(flat_key(kind, variant), ratio(median(loaded), median(empty)))


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
