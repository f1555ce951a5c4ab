"""Hop 1: Recommend over gRPC against a bare grpc.aio echo server, and the engine alone."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from bench.config import Mode
from bench.cpu import CpuUse, fixed, idle_share, idle_target, metered
from bench.engine_probe import EVICTION_BYTES, LEARNING_CALLS, past_sales
from bench.pg import delete_namespace
from bench.procs import PYTHON, REPO_ROOT, VAR, Child, Driver, HarnessError, base_env
from bench.sales import Sales
from bench.stats import Comparison, Sample, Section, Target, interleave, percentile, rotate
from recommender.store import Store
from recommender.synthetic import write_synthetic_store

LEARNING = "recommender, learning"


def synthetic_store(books: int, purchases: int) -> Path:
    """The generated store, made once and reused by later runs (var/bench/)."""
    path = VAR / f"recommender-{books}-{purchases}.sqlite3"
    if not path.exists():
        VAR.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        write_synthetic_store(partial, books=books, purchases=purchases)
        partial.rename(path)
    return path


def start_grpc(
    name: str, args: list[str], store: Path, *, events_namespace: str = ""
) -> tuple[Child, str]:
    """A server on a free port; with ``events_namespace``, consuming its events."""
    env = base_env(
        RECOMMENDER_LISTEN="127.0.0.1:0",
        RECOMMENDER_DB=str(store),
        RECOMMENDER_CONSUME_EVENTS="true" if events_namespace else "false",
        RECOMMENDER_INSTANCE=f"bench-{name}",
        EVENTS_NAMESPACE=events_namespace,
    )
    env.pop("RECOMMENDER_METRICS_PORT", None)
    child = Child(name, args, env)
    text = child.wait_for(" ready", timeout=120)
    if events_namespace:
        child.wait_for("events: consuming", timeout=60)
    serving = re.search(r"serving on 127\.0\.0\.1:(\d+)", text)
    assert serving is not None, text  # wait_for returned the ready line
    port = serving.group(1)
    return child, f"127.0.0.1:{port}"


def engine_alone(store: Path, calls: int, users: int) -> dict[str, float]:
    done = subprocess.run(
        [PYTHON, "-m", "bench.engine_probe", str(store), str(calls), str(users)],
        cwd=REPO_ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise HarnessError(f"engine probe failed:\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout)
    return {
        "engine build s": data["build_seconds"],
        "engine p50 ms (first pass)": percentile(data["cold"], 50) * 1000,
        "engine p99 ms (first pass)": percentile(data["cold"], 99) * 1000,
        "engine p50 ms (warm)": percentile(data["warm"], 50) * 1000,
        "engine p99 ms (warm)": percentile(data["warm"], 99) * 1000,
        "engine p50 ms (caches emptied before each call)": percentile(data["evicted"], 50) * 1000,
        "engine p99 ms (caches emptied before each call)": percentile(data["evicted"], 99) * 1000,
        "engine p50 ms (learning)": percentile(data["learning"], 50) * 1000,
        "engine p99 ms (learning)": percentile(data["learning"], 99) * 1000,
        "engine process peak RSS MB": data["peak_rss_mb"],
    }


def run(mode: Mode, memory: dict[str, float]) -> Section:
    store = synthetic_store(mode.books, mode.purchases)
    users = mode.books  # write_synthetic_store's default: one user per book
    section = Section(f"Recommender ({mode.books:,} books, {mode.purchases:,} purchases)")
    recommender, target = start_grpc("recommender", [PYTHON, "-m", "recommender"], store)
    echo, echo_target = start_grpc("echo", [PYTHON, "-m", "bench.echo_server"], store)
    fixed_answer, fixed_target = start_grpc(
        "fixed-answer", [PYTHON, "-m", "bench.fixed_answer_server"], store
    )
    # The same recommender on a copy of the store, learning the sales published
    # during its own rounds.
    namespace = f"bench-{os.getpid()}-sales"
    learning_store = VAR / f"recommender-learning-{os.getpid()}.sqlite3"
    shutil.copyfile(store, learning_store)
    learning, learning_target = start_grpc(
        "learning", [PYTHON, "-m", "recommender"], learning_store, events_namespace=namespace
    )
    with Store(store) as opened:
        books = [sale.book_id for sale in past_sales(opened)]
    sales = Sales(namespace=namespace, rate=mode.sales_per_second, books=books, users=users)
    sales.start()
    load = Driver("grpc-load", "bench.grpc_load")
    cpu = {name: CpuUse() for name in ("echo server", "fixed answer", "recommender", LEARNING)}
    try:

        def round_of(where: str, concurrency: int, seconds: float, seed: int) -> Sample:
            return Sample.from_dict(
                load.run(
                    target=where,
                    concurrency=concurrency,
                    seconds=seconds,
                    users=users,
                    seed=seed,
                )
            )

        # Warm all: channels connected, the index's lazily computed parts filled.
        round_of(echo_target, 16, 1.0, 99)
        round_of(fixed_target, 16, 1.0, 99)
        round_of(target, 16, 3.0 if mode.name == "full" else 1.0, 99)
        for concurrency in mode.concurrencies:
            seeds = iter(range(1, 1000))

            def runner(where: str, c: int = concurrency, s: Iterator[int] = seeds) -> Sample:
                return round_of(where, c, mode.grpc_seconds, next(s))

            name = f"Recommend x{concurrency}"
            if concurrency != 16:
                pairs = interleave(
                    mode.grpc_rounds, partial(runner, echo_target), partial(runner, target)
                )
                section.comparisons.append(Comparison.of(name, "echo server", "recommender", pairs))
                continue

            # At the target's concurrency, the fixed answer too, and where the CPU went.
            def selling(where: str) -> Sample:
                sales.on()
                try:
                    return runner(where)
                finally:
                    sales.off()

            servers = {
                "echo server": (echo, partial(runner, echo_target)),
                "fixed answer": (fixed_answer, partial(runner, fixed_target)),
                "recommender": (recommender, partial(runner, target)),
                LEARNING: (learning, partial(selling, learning_target)),
            }
            samples = rotate(
                mode.grpc_rounds,
                {
                    label: metered(
                        round_,
                        {"server": fixed(child.pid), "load generator": fixed(load.pid)},
                        cpu[label],
                    )
                    for label, (child, round_) in servers.items()
                },
            )
            for label in ("recommender", "fixed answer", LEARNING):
                pairs = list(zip(samples["echo server"], samples[label], strict=True))
                section.comparisons.append(Comparison.of(name, "echo server", label, pairs))
        for label, use in cpu.items():
            section.figures.update(use.figures(f"x16, {label}", "call"))
        # Its consumer connected, no call and no sale: nothing to do.
        idle = idle_share([learning.pid])[learning.pid]
        section.figures["recommender (learning): % of a core while idle"] = idle
        section.targets.append(idle_target("recommender (learning)", idle))
        memory["recommender"] = recommender.peak_rss_mb()
        memory["recommender (learning)"] = learning.peak_rss_mb()
        memory["echo server (baseline)"] = echo.peak_rss_mb()
        section.figures["learning: sales published in its rounds"] = float(sales.published)
        # Those still queued when the last round ended are applied after it.
        section.figures["learning: sales applied by the end"] = float(
            learning.text().count("result=applied")
        )
    finally:
        sales.close()
        load.stop()
        recommender.stop()
        echo.stop()
        fixed_answer.stop()
        learning.stop()
        delete_namespace(namespace, recommenders=["bench-learning"])
        learning_store.unlink(missing_ok=True)
    section.figures.update(engine_alone(store, mode.engine_calls, users))
    at16 = next(
        c for c in section.comparisons if c.name == "Recommend x16" and c.subject == "recommender"
    )
    section.targets += [
        Target("QPS at 16 concurrent vs echo", at16.rate_ratio, 0.8, at_least=True),
        Target("p99 at 16 concurrent vs echo", at16.p99_ratio, 2.0, at_least=False),
    ]
    section.notes.append(
        "Each round drives one server for the same seconds from one load-generator process"
        " (grpc.aio, one channel per server); random users and categories, max_results 10."
        " The fixed answer is the recommender's own server answering every call with the same"
        " ten books: between the echo server and it, the cost of a ten-book answer; between it"
        " and the recommender, the ranking's. 'Learning' is the recommender on a copy of the"
        f" store, consuming sales published at {mode.sales_per_second:g}/s during its rounds"
        " (each a past purchase's book, best sellers more often, for a random customer):"
        " the same calls while every sale is stored and learned. CPU per call is the"
        " server's and the load generator's own (user + system, all threads, from /proc)"
        " over the x16 rounds."
    )
    section.notes.append(
        "The engine alone: recommend() timed in a process of its own over the same store and"
        " random calls, a first pass, the same calls again (warm), the same calls with an"
        f" {EVICTION_BYTES >> 20} MB copy before each (the CPU caches and TLB emptied, as gRPC's"
        " work between a server's calls leaves them), then new calls while it"
        f" learns: a purchase between every {LEARNING_CALLS} calls, each a past purchase's"
        " customer and book in a new order (best sellers sell more)."
    )
    return section
