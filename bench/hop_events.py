"""Hop 3: N purchases end to end (outbox row -> relay -> RabbitMQ -> Celery
handlers committed) against a bare aio-pika publish -> ConsumerStep ack-only
consume of the same N messages, and against the conventional peer (the same
handlers as Celery tasks sent from on_commit, bench/celery_peer.py), every
event id counted; then the kill test: site processes SIGKILLed between their
commit and their dispatch, and the events each side lost."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import aio_pika
import amqp
from kombu import Connection
from kombu.pidbox import Mailbox

from bench.config import Mode
from bench.cpu import CpuUse, Pids, fixed, idle_share, idle_target, metered, named
from bench.pg import AMQP_URL, database, delete_namespace
from bench.procs import PYTHON, VAR, Child, Driver, HarnessError, base_env, children_of
from bench.stats import Comparison, Floor, Sample, Section, Target, fmt, median, rotate
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
# Issue 18's targets: ours against the conventional peer and the ack-only consume.
RATE_VS_PEER = 1.5
RATE_VS_BARE = 0.35
# The kill test: checkouts each site process completes before the one it dies in.
KILL_WARM_CHECKOUTS = 2
# How long the kill test waits for effects that have stopped arriving.
SETTLE_SECONDS = 3.0
# The peer's tasks per purchase: one per consumer of ours.
PEER_PURCHASE_TASKS = len(PURCHASE_CONSUMERS)
# The peer's warm-up burst: its connections and caches, not a round's worth.
PEER_WARM = 20
PEER = "conventional Celery (on_commit -> task.delay)"
OURS = "outbox -> relay -> handlers"


def handlers_free(figures: dict[str, float]) -> Floor:
    """The rate against the ack-only consume if the consumers' handlers cost
    nothing: the bare side's CPU per purchase over ours without the workers'.
    A purchase's CPU, not the cores' idle time, bounds both sides' rates."""
    ours = figures.get("subject: CPU ms per purchase, all measured", math.nan)
    workers = figures.get("subject: CPU ms per purchase, workers", math.nan)
    bare = figures.get("baseline: CPU ms per purchase, all measured", math.nan)
    return Floor(
        bare / (ours - workers) if ours > workers else math.nan,
        f"the relay, RabbitMQ and PostgreSQL alone ({fmt(ours - workers)} ms CPU a purchase,"
        f" the bare side {fmt(bare)} ms), the workers' {fmt(workers)} ms taken away; the target"
        f" leaves them {fmt(bare / RATE_VS_BARE - (ours - workers))} ms",
    )


def peer_queue(namespace: str) -> str:
    """The conventional peer's task queue."""
    return f"{namespace}.peer-tasks"


def peer_control_exchange(namespace: str) -> str:
    return f"{namespace}.peer-control"


def delete_peer(namespace: str) -> None:
    control = peer_control_exchange(namespace)
    with Connection(AMQP_URL, connect_timeout=5) as conn:
        channel = cast(amqp.Channel, conn.default_channel)
        channel.queue_delete(peer_queue(namespace))
        for exchange in (
            peer_queue(namespace),
            Mailbox.exchange_fmt % control,
            Mailbox.reply_exchange_fmt % control,
            f"{namespace}.peer-events",
        ):
            channel.exchange_delete(exchange)


def peer_worker(name: str, processes: int, env: dict[str, str]) -> Child:
    """Celery's default worker: a prefork pool of ``processes``."""
    return Child(
        name,
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "bench.celery_peer",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={processes}",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
            f"--hostname={name}-{os.getpid()}@%h",
        ],
        env,
    )


@dataclass
class PeerLog:
    """What the peer's tasks wrote: per order, each consumer's commits and the last time."""

    consumers: dict[int, dict[str, int]] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)

    @classmethod
    def of(cls, lines: list[str]) -> PeerLog:
        log = cls()
        for line in lines:
            _, consumer, at, order = line.split()
            seen = log.consumers.setdefault(int(order), {})
            seen[consumer] = seen.get(consumer, 0) + 1
            log.last[int(order)] = max(log.last.get(int(order), 0.0), float(at))
        return log

    def complete(self, order: int, consumers: int) -> bool:
        return len(self.consumers.get(order, {})) >= consumers

    def twice(self) -> int:
        return sum(1 for seen in self.consumers.values() for c in seen.values() if c > 1)


@dataclass
class KillResult:
    """One side's kill test: checkouts committed, and of those, effects lost or doubled."""

    kills: int = 0
    committed: int = 0
    lost: int = 0
    applied_twice: int = 0


def kill_counts(
    committed: dict[int, str],
    consumers_done: dict[int, int],
    order_lines: dict[int, int],
    ledger_lines: dict[int, int],
    consumers: int,
) -> tuple[int, int]:
    """(lost, applied twice) over the committed orders: lost when a consumer's
    effect never came or its ledger lines are missing, twice when the ledger
    holds an order's lines more than once."""
    lost = sum(
        1
        for order in committed
        if consumers_done.get(order, 0) < consumers or not ledger_lines.get(order)
    )
    twice = sum(1 for order in committed if ledger_lines.get(order, 0) > order_lines.get(order, 0))
    return lost, twice


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
    subject_ns, bare_ns, peer_ns = f"{tag}-events", f"{tag}-bare", f"{tag}-peer"
    ack_log = VAR / "logs" / f"ack-only-{os.getpid()}.log"
    peer_log = VAR / "logs" / f"peer-{os.getpid()}.log"
    ack_log.parent.mkdir(parents=True, exist_ok=True)
    ack_log.write_text("")
    peer_log.write_text("")
    counts: defaultdict[str, int] = defaultdict(int)
    cpu_subject, cpu_bare, cpu_peer = CpuUse(), CpuUse(), CpuUse()
    kills: dict[str, KillResult] = {}
    with database(f"bookstore_bench_{os.getpid()}") as url:
        children: list[Child] = []
        driver = Driver("django-driver", "bench.django_driver", django_env(url, subject_ns))
        # The peer's site: its tasks go to the peer's own queue.
        peer_driver = Driver("peer-driver", "bench.django_driver", django_env(url, peer_ns))
        try:
            peer = peer_worker(
                "peer-worker",
                mode.events_workers,
                django_env(url, peer_ns, BENCH_PEER_LOG=str(peer_log)),
            )
            children.append(peer)
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
            peer_driver.run(cmd="attach")
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

            def conventional(n: int = n) -> Sample:
                first = next(orders)
                expected = n * PEER_PURCHASE_TASKS
                start_at = len(peer_log.read_text().splitlines())
                burst = peer_driver.run(cmd="peer_burst", n=n, first_order=first)
                t0 = burst["committed"]

                def lines() -> list[str] | None:
                    got = peer_log.read_text().splitlines()[start_at:]
                    return got if len(got) >= expected else None

                # One task at a time per process: far slower than ours, given longer.
                with contextlib.suppress(HarnessError):  # counted as lost below
                    wait_for(lines, 60 + n / 5, "the peer's tasks")
                time.sleep(0.3)  # a late duplicate would show up now
                log = PeerLog.of(peer_log.read_text().splitlines()[start_at:])
                wanted = range(first, first + n)
                done = [o for o in wanted if log.complete(o, PEER_PURCHASE_TASKS)]
                ledger = driver.run(cmd="applied", event_ids=[], first_order=first, n=n)
                counts["peer lost"] += max(n - len(done), ledger["ledger_missing"])
                counts["peer applied twice"] += ledger["ledger_twice"] + log.twice()
                latencies = [max(0.0, log.last[o] - t0) for o in done]
                return Sample(len(latencies), max(latencies, default=0.0), latencies)

            subject()  # warm: connections, the relay's first round, the worker's caches
            bare()
            conventional(min(n, PEER_WARM))
            broker, postgres = named("beam.smp"), named("postgres")
            harness = fixed(os.getpid(), driver.pid)

            def workers(prefix: str) -> Pids:
                return fixed(*(c.pid for c in children if c.name.startswith(prefix)))

            samples = rotate(
                mode.events_rounds,
                {
                    "bare": metered(
                        bare,
                        {
                            "workers": workers("ack-only-worker"),
                            "RabbitMQ": broker,
                            "PostgreSQL": postgres,
                            "publisher and harness": harness,
                        },
                        cpu_bare,
                    ),
                    "subject": metered(
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
                    "peer": metered(
                        conventional,
                        {
                            "workers": lambda: [peer.pid, *children_of(peer.pid)],
                            "RabbitMQ": broker,
                            "PostgreSQL": postgres,
                            "site (dispatch) and harness": fixed(os.getpid(), peer_driver.pid),
                        },
                        cpu_peer,
                    ),
                },
            )
            pairs = list(zip(samples["bare"], samples["subject"], strict=True))
            peer_pairs = list(zip(samples["peer"], samples["subject"], strict=True))
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
            idle = idle_share([relay.pid, *workers("events-worker")()], mode.idle_seconds)
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
            memory["conventional Celery worker (baseline)"] = peer.peak_rss_mb()

            def ours_done(committed: dict[int, str]) -> dict[int, int]:
                by_correlation = driver.run(
                    cmd="inbox_consumers", correlations=list(committed.values())
                )
                return {o: by_correlation.get(c, 0) for o, c in committed.items()}

            def peer_done(committed: dict[int, str]) -> dict[int, int]:
                log = PeerLog.of(peer_log.read_text().splitlines())
                return {o: len(log.consumers.get(o, {})) for o in committed}

            for side, namespace, done_of in (
                ("ours", subject_ns, ours_done),
                ("peer", peer_ns, peer_done),
            ):
                kills[side] = kill_test(
                    side, mode.kills, django_env(url, namespace), done_of, driver
                )
        finally:
            driver.stop()
            peer_driver.stop()
            for child in reversed(children):
                child.stop()
            delete_namespace(subject_ns)
            delete_namespace(bare_ns)
            delete_namespace(peer_ns)
            delete_peer(peer_ns)
            ack_log.unlink(missing_ok=True)
            peer_log.unlink(missing_ok=True)
    comparison = Comparison.of("events", "aio-pika publish -> ack-only ConsumerStep", OURS, pairs)
    vs_peer = Comparison.of("events", PEER, OURS, peer_pairs)
    section.comparisons += [comparison, vs_peer]
    section.figures.update({k: float(v) for k, v in sorted(counts.items())})
    section.figures.update(cpu_subject.figures("subject", "purchase"))
    section.figures.update(cpu_bare.figures("baseline", "purchase"))
    section.figures.update(cpu_peer.figures("conventional Celery", "purchase"))
    for key in ("subject lost", "subject applied twice", "peer lost", "peer applied twice"):
        section.figures.setdefault(key, 0.0)
    for side, result in kills.items():
        who = "ours" if side == "ours" else "conventional Celery"
        section.figures[f"kill test, {who}: site processes SIGKILLed"] = float(result.kills)
        section.figures[f"kill test, {who}: checkouts committed"] = float(result.committed)
        section.figures[f"kill test, {who}: events lost"] = float(result.lost)
        section.figures[f"kill test, {who}: events applied twice"] = float(result.applied_twice)
    ours, theirs = kills["ours"], kills["peer"]
    section.targets += [
        Target("end-to-end rate vs conventional Celery", vs_peer.rate_ratio, RATE_VS_PEER, True),
        Target(
            "end-to-end rate vs bare consume",
            comparison.rate_ratio,
            RATE_VS_BARE,
            True,
            floor=handlers_free(section.figures),
        ),
        Target(
            f"kill test, {ours.kills} kill(s): events lost (conventional Celery lost"
            f" {theirs.lost} of {theirs.committed} in {theirs.kills} kill(s))",
            float(ours.lost),
            0,
            False,
            unit="",
        ),
        Target("kill test: events applied twice", float(ours.applied_twice), 0, False, unit=""),
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
    section.notes.append(
        "Conventional Celery (bench/celery_peer.py): the same four handlers (promotion stats,"
        " sales record, order e-mail, voucher grant) as ordinary Celery tasks, each in a"
        " transaction of its own, no inbox; the burst's N purchases are sent with"
        " transaction.on_commit(lambda: task.delay(envelope)) from one transaction (three"
        " tasks a purchase), to Celery's default worker: prefork with"
        f" {mode.events_workers} process(es), as many as ours, early acks, prefetch x4."
        " Each task notes its commit in a file (the harness's witness); rate and latency as"
        " above, from the commit."
    )
    section.notes.append(
        f"Kill test: {mode.kills} site processes per side (bench/kill_site.py), each placing"
        f" {KILL_WARM_CHECKOUTS} whole checkouts, then one whose commit is followed by a hook"
        " (registered before the checkout's own on_commit callbacks, so it runs first) that"
        " holds the process between its commit and its dispatch, where the harness SIGKILLs"
        " it: the window a crash, an OOM kill or a deploy's SIGKILL hits at random, held open"
        " so that every kill lands in it. Ours: order_checkout as it is (the outbox row"
        " commits with the order; the relay and the workers above run on). The peer: the"
        " same checkout sending its tasks from on_commit. Lost: a committed order whose"
        " three consumers' effects (inbox rows or the peer's notes, and the sales ledger)"
        " never all appear; applied twice: ledger lines beyond the order's."
    )
    return section


def kill_test(
    side: str,
    kills: int,
    env: dict[str, str],
    done_of: Callable[[dict[int, str]], dict[int, int]],
    driver: Driver,
) -> KillResult:
    """``kills`` site processes SIGKILLed between a commit and its dispatch; what was lost."""
    committed: dict[int, str] = {}
    for k in range(kills):
        site = Child(
            f"kill-site-{side}-{k}",
            [
                PYTHON,
                "-m",
                "bench.kill_site",
                side,
                f"kill-{side}-{os.getpid()}-{k}",
                str(KILL_WARM_CHECKOUTS),
            ],
            env,
        )
        try:
            text = site.wait_for("committed ", timeout=90)
        finally:
            site.proc.kill()
            site.stop()
        for order, correlation in re.findall(r"^(?:done|committed) (\d+) (\S+)$", text, re.M):
            committed[int(order)] = correlation
    # Whatever can still arrive does within seconds; the lost never do.
    deadline = time.monotonic() + 60
    done = done_of(committed)
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        if all(done.get(o, 0) >= len(PURCHASE_CONSUMERS) for o in committed):
            break
        if time.monotonic() - stable_since > SETTLE_SECONDS:
            break
        time.sleep(0.2)
        now = done_of(committed)
        if now != done:
            done, stable_since = now, time.monotonic()
    ledger = driver.run(cmd="ledger", orders=list(committed))
    lost, twice = kill_counts(
        committed,
        done,
        {int(o): c for o, c in ledger["order_lines"].items()},
        {int(o): c for o, c in ledger["ledger_lines"].items()},
        len(PURCHASE_CONSUMERS),
    )
    return KillResult(kills=kills, committed=len(committed), lost=lost, applied_twice=twice)
