"""Hop 3: N purchases end to end (outbox row -> relay -> RabbitMQ -> Celery
handlers committed) against a bare aio-pika publish -> ConsumerStep ack-only
consume of the same N messages, every event id counted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import defaultdict
from typing import Any

import aio_pika

from bench.config import Mode
from bench.cpu import CpuUse, Pids, fixed, idle_share, idle_target, metered, named
from bench.pg import AMQP_URL, database, delete_namespace
from bench.procs import PYTHON, VAR, Child, Driver, HarnessError, base_env
from bench.stats import Comparison, Sample, Section, Target, interleave, median
from events.topology import Topology

MANAGE = "marketplace_site/manage.py"
# The worker consumers that apply a PurchaseCompleted.
PURCHASE_CONSUMERS = ("worker.campaigns", "worker.emails", "worker.vouchers")
# Checkouts one at a time, each after the relay has gone back to sleep: the
# latency a customer's order sees, from its commit to its publish.
SINGLE_CHECKOUTS = 9
# The relay polled 20 times a second before LISTEN/NOTIFY: a commit waited
# 25 ms for it at the median. Waking on the notification must not be slower.
SINGLE_CHECKOUT_P50_MS = 25.0


def django_env(url: str, namespace: str, **extra: str) -> dict[str, str]:
    settings = {
        "DJANGO_SETTINGS_MODULE": "bench.site_settings",
        "DATABASE_URL": url,
        "EVENTS_NAMESPACE": namespace,
        "DJANGO_EMAIL_BACKEND": "bench.mail.EmailBackend",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    return base_env(**{**settings, **extra})


def worker(name: str, env: dict[str, str]) -> Child:
    child = Child(
        name,
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "events.celery_app",
            "worker",
            "--loglevel=INFO",
            "--concurrency=1",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            # Heartbeats stay on, as deployed: without their timer the worker's
            # event loop notices SIGTERM only at its next 10 s timer.
            f"--hostname={name}-{os.getpid()}@%h",
        ],
        env,
    )
    return child


async def publish(namespace: str, messages: list[tuple[str, bytes]], routing_key: str) -> None:
    """As the relay publishes: persistent, mandatory, confirmed, all at once."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(Topology(namespace=namespace).exchange)
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        body=body,
                        content_type="application/x-protobuf",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=event_id,
                        type=routing_key,
                    ),
                    routing_key=routing_key,
                    mandatory=True,
                )
                for event_id, body in messages
            )
        )


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out waiting for {what}")
        time.sleep(0.1)


def run(mode: Mode, memory: dict[str, float]) -> Section:
    n = mode.events
    section = Section(f"Events end to end ({n} purchases per round, PostgreSQL)")
    tag = f"bench-{os.getpid()}"
    subject_ns, bare_ns = f"{tag}-events", f"{tag}-bare"
    ack_log = VAR / "logs" / f"ack-only-{os.getpid()}.log"
    ack_log.parent.mkdir(parents=True, exist_ok=True)
    ack_log.write_text("")
    counts: defaultdict[str, int] = defaultdict(int)
    cpu_subject, cpu_bare = CpuUse(), CpuUse()
    with database(f"bookstore_bench_{os.getpid()}") as url:
        children: list[Child] = []
        driver = Driver("django-driver", "bench.django_driver", django_env(url, subject_ns))
        try:
            for i in range(mode.events_workers):
                children.append(worker(f"events-worker-{i}", django_env(url, subject_ns)))
                children.append(
                    worker(
                        f"ack-only-worker-{i}",
                        django_env(
                            url,
                            bare_ns,
                            BENCH_CONSUMERS_FACTORY="bench.ack_only:consumers",
                            BENCH_ACK_LOG=str(ack_log),
                        ),
                    )
                )
            driver.run(cmd="setup")  # migrates while the workers start
            for child in children:
                child.wait_for(" ready.", timeout=60)
            relay = Child(
                "relay",
                [PYTHON, MANAGE, "run_relay"],
                django_env(url, subject_ns, DJANGO_LOG_LEVEL="INFO"),
            )
            children.append(relay)
            relay.wait_for("relay started", timeout=60)
            orders = iter(range(1_000_000, 100_000_000, n))
            relayed: list[float] = []
            timeout = 60 + n / 20

            def subject() -> Sample:
                first = next(orders)
                inserted = driver.run(cmd="insert", n=n, first_order=first)
                t0 = inserted["committed"]

                def done() -> bool | None:
                    state = driver.run(cmd="progress", inbox_floor=inserted["inbox_floor"])
                    return True if state["applied"] >= n * len(PURCHASE_CONSUMERS) else None

                with contextlib.suppress(HarnessError):  # counted as lost below
                    wait_for(done, timeout, "the worker to apply every event")
                time.sleep(0.3)  # a late duplicate would show up now
                state = driver.run(
                    cmd="applied", event_ids=inserted["event_ids"], first_order=first, n=n
                )
                counts["subject lost"] += max(n - state["complete"], state["ledger_missing"])
                counts["subject applied twice"] += state["ledger_twice"] + state["inbox_twice"]
                latencies = [max(0.0, a - t0) for a in state["applied_at"]]
                if state["relayed_at"]:
                    relayed.append(state["relayed_at"] - t0)
                return Sample(len(latencies), max(latencies, default=0.0), latencies)

            def bare() -> Sample:
                first = next(orders)
                made = driver.run(cmd="envelopes", n=n, first_order=first)
                messages = [
                    (f"bare-{first}-{i}", bytes.fromhex(h)) for i, h in enumerate(made["envelopes"])
                ]
                wanted = {event_id for event_id, _ in messages}
                expected = n * len(PURCHASE_CONSUMERS)
                start_at = len(ack_log.read_text().splitlines())
                t0 = time.time()
                asyncio.run(publish(bare_ns, messages, "orders.purchase_completed"))

                def lines() -> list[str] | None:
                    got = ack_log.read_text().splitlines()[start_at:]
                    return got if len(got) >= expected else None

                try:
                    got = wait_for(lines, timeout, "the ack-only worker")
                except HarnessError:
                    got = ack_log.read_text().splitlines()[start_at:]
                seen: dict[tuple[str, str], int] = defaultdict(int)
                last: dict[str, float] = {}
                for line in got:
                    event_id, consumer, at = line.split()
                    if event_id in wanted:
                        seen[event_id, consumer] += 1
                        last[event_id] = max(last.get(event_id, 0.0), float(at))
                counts["baseline lost"] += expected - len(seen)
                counts["baseline delivered twice"] += sum(1 for c in seen.values() if c > 1)
                latencies = [max(0.0, at - t0) for at in last.values()]
                return Sample(len(latencies), max(latencies, default=0.0), latencies)

            subject()  # warm: connections, the relay's first round, the worker's caches
            bare()
            broker, postgres = named("beam.smp"), named("postgres")
            harness = fixed(os.getpid(), driver.pid)

            def workers(prefix: str) -> Pids:
                return fixed(*(c.pid for c in children if c.name.startswith(prefix)))

            pairs = interleave(
                mode.events_rounds,
                metered(
                    bare,
                    {
                        "workers": workers("ack-only-worker"),
                        "RabbitMQ": broker,
                        "PostgreSQL": postgres,
                        "publisher and harness": harness,
                    },
                    cpu_bare,
                ),
                metered(
                    subject,
                    {
                        "workers": workers("events-worker"),
                        "relay": fixed(relay.pid),
                        "RabbitMQ": broker,
                        "PostgreSQL": postgres,
                        "harness": harness,
                    },
                    cpu_subject,
                ),
            )
            section.figures["relay: s from commit to the last row sent (median)"] = median(relayed)
            single: list[float] = []
            for _ in range(SINGLE_CHECKOUTS):
                time.sleep(0.2)  # back to sleep, waiting for a notification
                order = next(orders)
                one = driver.run(cmd="insert", n=1, first_order=order)
                wait_for(
                    lambda one=one: (
                        driver.run(cmd="progress", inbox_floor=one["inbox_floor"])["applied"]
                        >= len(PURCHASE_CONSUMERS)
                        or None
                    ),
                    60,
                    "one checkout's events to be applied",
                )
                state = driver.run(
                    cmd="applied", event_ids=one["event_ids"], first_order=order, n=1
                )
                single.append(1000 * (state["relayed_at"] - one["committed"]))
            single_p50 = median(single)
            section.figures["relay: ms from one checkout's commit to its publish (median)"] = (
                single_p50
            )
            # Nothing to do: the relay sleeps until a commit notifies it (PostgreSQL).
            idle = idle_share([relay.pid, *workers("events-worker")()])
            section.figures["relay: % of a core while idle"] = idle[relay.pid]
            section.figures["worker: % of a core while idle (the busiest)"] = max(
                share for pid, share in idle.items() if pid != relay.pid
            )
            memory["relay"] = relay.peak_rss_mb()
            memory["worker"] = max(
                c.peak_rss_mb() for c in children if c.name.startswith("events-worker")
            )
            memory["ack-only worker (baseline)"] = max(
                c.peak_rss_mb() for c in children if c.name.startswith("ack-only-worker")
            )
        finally:
            driver.stop()
            for child in reversed(children):
                child.stop()
            delete_namespace(subject_ns)
            delete_namespace(bare_ns)
            ack_log.unlink(missing_ok=True)
    comparison = Comparison.of(
        "events", "aio-pika publish -> ack-only ConsumerStep", "outbox -> relay -> handlers", pairs
    )
    section.comparisons.append(comparison)
    section.figures.update({k: float(v) for k, v in sorted(counts.items())})
    section.figures.update(cpu_subject.figures("subject", "purchase"))
    section.figures.update(cpu_bare.figures("baseline", "purchase"))
    for key in ("subject lost", "subject applied twice"):
        section.figures.setdefault(key, 0.0)
    section.targets += [
        Target("end-to-end rate vs bare consume", comparison.rate_ratio, 0.5, at_least=True),
        Target("events lost", section.figures["subject lost"], 0, at_least=False, unit=""),
        Target("events applied twice", section.figures["subject applied twice"], 0, False, unit=""),
        Target(
            "one checkout, commit to publish, p50", single_p50, SINGLE_CHECKOUT_P50_MS, False, " ms"
        ),
        idle_target("relay", section.figures["relay: % of a core while idle"]),
        idle_target(
            "worker (the busiest)", section.figures["worker: % of a core while idle (the busiest)"]
        ),
    ]
    section.notes.append(
        f"Each round commits {n} PurchaseCompleted outbox rows at once (a burst); each is"
        f" applied by {len(PURCHASE_CONSUMERS)} consumers ({', '.join(PURCHASE_CONSUMERS)})."
        " Rate = events whose every consumer committed / seconds from the commit to the last"
        " one; latency = outbox commit -> last consumer's commit. The baseline publishes the"
        " same envelopes (confirmed, persistent, as the relay does) to the same queues of a"
        " namespace of its own, consumed by the same ConsumerStep acking only. Both sides"
        f" run {mode.events_workers} worker process(es), one per core, as a deployment would."
        " CPU per purchase is each group's user + system time (from /proc) over the measured"
        " rounds, RabbitMQ and PostgreSQL included: they serve only the bench while it runs."
    )
    return section
