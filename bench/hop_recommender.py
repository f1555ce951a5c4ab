"""Hop 1: Recommend over gRPC against bare grpc.aio servers (no interceptor,
a fixed reply; the echo server with our access log), against the seed
tutorial's synchronous server over the same mutual TLS link, against itself
with tracing disabled, and the engine alone."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path

import grpc

from bench.config import Mode
from bench.cpu import CpuUse, fixed, idle_share, idle_target, metered
from bench.engine_probe import EVICTION_BYTES, LEARNING_CALLS, past_sales
from bench.grpc_load import METHOD
from bench.pg import delete_namespace
from bench.procs import PYTHON, REPO_ROOT, VAR, Child, Driver, HarnessError, base_env
from bench.sales import Sales
from bench.stats import Comparison, Floor, Sample, Section, Target, interleave, percentile, rotate
from bookstore.recommendations.v1 import recommendations_pb2 as pb
from recommender.catalog_file import read_catalog
from recommender.config import DEMO_CATALOG
from recommender.engine import Purchase
from recommender.store import Store
from recommender.synthetic import write_synthetic_store
from scripts.dev_certs import DevCerts, write_dev_certs

LEARNING = "recommender, learning"
BARE = "bare server"
DEMO = "recommender, demo store"
TUTORIAL = "tutorial server"
FIXED = "fixed answer"
MTLS = " (mTLS)"
UNTRACED = DEMO + ", tracing disabled"
# What the site's gRPC client sends with every call while tracing is off
# (the ALWAYS_OFF sampler: not sampled); the x16 calls all carry one.
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-00"

# Issue 18's targets, ratios of the same run.
DEMO_RATE_VS_BARE = 0.85
DEMO_P99_VS_BARE = 1.5
LARGE_RATE_VS_BARE = 0.75
RATE_VS_TUTORIAL = 1.0
LATENCY_VS_TUTORIAL = 1.0
# Issue 17's: tracing off (the default) costs nothing measurable.
OFF_VS_DISABLED = 0.97


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


def recommender_store(users: int) -> Path:
    """The demo catalog and a history of the bench's customers, for the recommender."""
    path = VAR / f"site-recommender-{users}.sqlite3"
    if not path.exists():
        books = read_catalog(DEMO_CATALOG)
        rng = random.Random(2)
        ids = [b.id for b in books]
        purchases = []
        for order in range(1, users * 20 + 1):
            user = rng.randint(1, users)
            for book in rng.sample(ids, rng.randint(1, 4)):
                purchases.append(Purchase(order, user, book))
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        with Store(partial) as store:
            store.upsert_books(books)
            store.add_purchases(purchases)
        partial.rename(path)
    return path


# A batch's INFO line (events.consuming): one event by its type and id, or many counted.
_APPLIED_ONE = re.compile(r"events: \S+ applied [\w.]+ [0-9a-f-]{36}")
_APPLIED_MANY = re.compile(r"events: \S+ applied (\d+) events")


def events_applied(log: str) -> int:
    """The events a consumer's log says it applied, from its lines per batch."""
    return len(_APPLIED_ONE.findall(log)) + sum(map(int, _APPLIED_MANY.findall(log)))


def start_grpc(
    name: str,
    args: list[str],
    store: Path,
    *,
    events_namespace: str = "",
    certs: DevCerts | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[Child, str]:
    """A server on a free port; with ``events_namespace``, consuming its events;
    with ``certs``, mutual TLS as the site's link to the recommender; ``env``:
    more variables."""
    tls = {}
    if certs is not None:
        tls = {
            "RECOMMENDER_TLS_CERT": str(certs.server_cert),
            "RECOMMENDER_TLS_KEY": str(certs.server_key),
            "RECOMMENDER_TLS_CLIENT_CA": str(certs.ca),
        }
    variables = base_env(
        RECOMMENDER_LISTEN="127.0.0.1:0",
        RECOMMENDER_DB=str(store),
        RECOMMENDER_CONSUME_EVENTS="true" if events_namespace else "false",
        RECOMMENDER_INSTANCE=f"bench-{name}",
        EVENTS_NAMESPACE=events_namespace,
        **tls,
        **(env or {}),
    )
    variables.pop("RECOMMENDER_METRICS_PORT", None)
    child = Child(name, args, variables)
    text = child.wait_for(" ready", timeout=120)
    if events_namespace:
        child.wait_for("events: consuming", timeout=60)
    serving = re.search(r"serving on 127\.0\.0\.1:(\d+)", text)
    assert serving is not None, text  # wait_for returned the ready line
    port = serving.group(1)
    return child, f"127.0.0.1:{port}"


def trace_read(child: Child, target: str) -> str:
    """The trace id the server gives a call carrying TRACEPARENT: TRACE_ID
    where tracing is off, "-" where it is disabled. The call is refused
    (INVALID_ARGUMENT), so the access log has its line at the default level."""
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            METHOD,
            request_serializer=pb.RecommendationRequest.SerializeToString,
            response_deserializer=pb.RecommendationResponse.FromString,
        )
        with contextlib.suppress(grpc.RpcError):  # INVALID_ARGUMENT, as meant
            call(
                pb.RecommendationRequest(max_results=-1),
                metadata=(("traceparent", TRACEPARENT),),
                timeout=10,
            )
    refused = re.compile(r"\[([0-9a-f]{32}|-)\] rpc method=\S+ code=INVALID_ARGUMENT")
    found = refused.search(child.wait_for("code=INVALID_ARGUMENT", timeout=10))
    if found is None:
        raise HarnessError(f"{child.name}: no access-log line with a trace id:\n{child.text()}")
    return found.group(1)


def expect_trace_read(child: Child, target: str, expected: str) -> None:
    """Stops the hop unless the server reads the caller's trace as its row says."""
    read = trace_read(child, target)
    if read != expected:
        raise HarnessError(f"{child.name} read the caller's trace as {read!r}, not {expected!r}")


def recommender_targets(mode: Mode, comparisons: list[Comparison]) -> list[Target]:
    """Issue 18's targets for the recommender, from the comparisons of one run."""

    def find(name: str, baseline: str, subject: str) -> Comparison:
        return next(
            c for c in comparisons if (c.name, c.baseline, c.subject) == (name, baseline, subject)
        )

    demo = find("Recommend x16", BARE, DEMO)
    tracing_off = find("Recommend x16", UNTRACED, DEMO)
    large = find("Recommend x16", BARE, "recommender")
    vs_tutorial = find("Recommend x16 mTLS", TUTORIAL + MTLS, DEMO + MTLS)
    one = find("Recommend x1 mTLS", TUTORIAL + MTLS, DEMO + MTLS)
    # The floors: what stays when the ranking is taken away. The fixed answer
    # is our server with no ranking (grpc.aio, its per-call policy, reading
    # the request, building the answer), against bare grpc.aio or the
    # tutorial's synchronous server.
    unranked = find("Recommend x16", BARE, FIXED)
    unranked_tls = find("Recommend x16 mTLS", TUTORIAL + MTLS, FIXED + MTLS)
    unranked_one = find("Recommend x1 mTLS", TUTORIAL + MTLS, FIXED + MTLS)
    no_ranking = "our server with the ranking taken out (the fixed answer) vs bare"
    no_ranking_tls = "our server with the ranking taken out (the fixed answer) vs the tutorial"
    return [
        Target(
            "x16, demo store: calls/s vs bare",
            demo.rate_ratio,
            DEMO_RATE_VS_BARE,
            True,
            floor=Floor(unranked.rate_ratio, no_ranking),
        ),
        Target(
            "x16, demo store: p99 vs bare",
            demo.p99_ratio,
            DEMO_P99_VS_BARE,
            False,
            floor=Floor(unranked.p99_ratio, no_ranking),
        ),
        Target(
            f"x16, {mode.books // 1000}k books / {mode.purchases / 1e6:g}M purchases:"
            " calls/s vs bare",
            large.rate_ratio,
            LARGE_RATE_VS_BARE,
            True,
            floor=Floor(unranked.rate_ratio, no_ranking),
        ),
        Target(
            "x16 mTLS: calls/s vs tutorial",
            vs_tutorial.rate_ratio,
            RATE_VS_TUTORIAL,
            True,
            floor=Floor(unranked_tls.rate_ratio, no_ranking_tls),
        ),
        Target(
            "x16 mTLS: p99 vs tutorial",
            vs_tutorial.p99_ratio,
            LATENCY_VS_TUTORIAL,
            False,
            floor=Floor(unranked_tls.p99_ratio, no_ranking_tls),
        ),
        Target(
            "x1 mTLS: p50 vs tutorial",
            one.p50_ratio,
            LATENCY_VS_TUTORIAL,
            False,
            floor=Floor(unranked_one.p50_ratio, no_ranking_tls),
        ),
        Target(
            "x16, demo store, tracing off: calls/s vs tracing disabled",
            tracing_off.rate_ratio,
            OFF_VS_DISABLED,
            True,
        ),
    ]


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
    demo_store = recommender_store(mode.site_users)
    # A development set as `make certs` makes (scripts/dev_certs.py), the bench's own.
    certs, _ = write_dev_certs(VAR / "certs")
    section = Section(f"Recommender ({mode.books:,} books, {mode.purchases:,} purchases)")
    started: list[Child] = []

    def start(
        name: str,
        module: str,
        where: Path,
        *,
        events_namespace: str = "",
        certs: DevCerts | None = None,
        env: Mapping[str, str] | None = None,
    ) -> tuple[Child, str]:
        child, target = start_grpc(
            name,
            [PYTHON, "-m", module],
            where,
            events_namespace=events_namespace,
            certs=certs,
            env=env,
        )
        started.append(child)
        return child, target

    recommender, target = start("recommender", "recommender", store)
    echo, echo_target = start("echo", "bench.echo_server", store)
    fixed_answer, fixed_target = start("fixed-answer", "bench.fixed_answer_server", store)
    bare, bare_target = start("bare", "bench.bare_server", store)
    demo, demo_target = start("demo", "recommender", demo_store)
    # The same with OpenTelemetry's switch: what tracing off is measured against.
    untraced, untraced_target = start(
        "demo-untraced", "recommender", demo_store, env={"OTEL_SDK_DISABLED": "true"}
    )
    tutorial, tutorial_target = start("tutorial", "bench.tutorial_server", demo_store)
    _, bare_tls_target = start("bare-tls", "bench.bare_server", demo_store, certs=certs)
    _, fixed_tls_target = start(
        "fixed-answer-tls", "bench.fixed_answer_server", demo_store, certs=certs
    )
    _, demo_tls_target = start("demo-tls", "recommender", demo_store, certs=certs)
    _, tutorial_tls_target = start("tutorial-tls", "bench.tutorial_server", demo_store, certs=certs)
    # The same recommender on a copy of the store, learning the sales published
    # during its own rounds.
    namespace = f"bench-{os.getpid()}-sales"
    learning_store = VAR / f"recommender-learning-{os.getpid()}.sqlite3"
    shutil.copyfile(store, learning_store)
    learning, learning_target = start(
        "learning", "recommender", learning_store, events_namespace=namespace
    )
    with Store(store) as opened:
        books = [sale.book_id for sale in past_sales(opened)]
    sales = Sales(namespace=namespace, rate=mode.sales_per_second, books=books, users=users)
    sales.start()
    load = Driver("grpc-load", "bench.grpc_load")
    x16 = (BARE, "echo server", FIXED, "recommender", LEARNING, DEMO, UNTRACED, TUTORIAL)
    cpu = {name: CpuUse() for name in x16}
    try:
        # Each side of the tracing target is what its label says.
        expect_trace_read(demo, demo_target, TRACE_ID)
        expect_trace_read(untraced, untraced_target, "-")

        def round_of(
            where: str,
            concurrency: int,
            seconds: float,
            seed: int,
            *,
            tls: bool = False,
            tutorial: bool = False,
            population: int = users,
            traceparent: str = "",
        ) -> Sample:
            return Sample.from_dict(
                load.run(
                    target=where,
                    concurrency=concurrency,
                    seconds=seconds,
                    users=population,
                    seed=seed,
                    tls=str(certs.directory) if tls else "",
                    tutorial=tutorial,
                    traceparent=traceparent,
                )
            )

        # The demo store's customers; the tutorial's calls as its client makes them.
        as_demo = partial(round_of, population=mode.site_users)
        as_tutorial = partial(as_demo, tutorial=True)
        as_tutorial_tls = partial(as_tutorial, tls=True)
        # Warm all: channels connected, the index's lazily computed parts filled.
        warm = mode.warm_seconds
        for where in (echo_target, fixed_target, bare_target):
            round_of(where, 16, warm, 99)
        round_of(target, 16, 3.0 if mode.name == "full" else 1.0, 99)
        as_demo(demo_target, 16, warm, 99)
        as_demo(untraced_target, 16, warm, 99)
        as_tutorial(tutorial_target, 16, warm, 99)
        for where in (bare_tls_target, tutorial_tls_target, demo_tls_target, fixed_tls_target):
            as_tutorial_tls(where, 16, warm, 99)
        for concurrency in mode.concurrencies:
            seeds = iter(range(1, 1000))

            def runner(
                where: str,
                c: int = concurrency,
                s: Iterator[int] = seeds,
                how: Callable[..., Sample] = round_of,
            ) -> Sample:
                return how(where, c, mode.grpc_seconds, next(s))

            name = f"Recommend x{concurrency}"
            if concurrency != 16:
                pairs = interleave(
                    mode.grpc_rounds, partial(runner, echo_target), partial(runner, target)
                )
                section.comparisons.append(Comparison.of(name, "echo server", "recommender", pairs))
                continue

            # At the target's concurrency, every server, and where the CPU went.
            # Each call carries a traceparent, as the site's do: the same bytes
            # to every server, which ours reads unless tracing is disabled.
            def traced(where: str, how: Callable[..., Sample] = round_of) -> Sample:
                return runner(where, how=partial(how, traceparent=TRACEPARENT))

            def selling(where: str) -> Sample:
                sales.on()
                try:
                    return traced(where)
                finally:
                    sales.off()

            servers = {
                BARE: (bare, partial(traced, bare_target)),
                "echo server": (echo, partial(traced, echo_target)),
                FIXED: (fixed_answer, partial(traced, fixed_target)),
                "recommender": (recommender, partial(traced, target)),
                LEARNING: (learning, partial(selling, learning_target)),
                DEMO: (demo, partial(traced, demo_target, how=as_demo)),
                UNTRACED: (untraced, partial(traced, untraced_target, how=as_demo)),
                TUTORIAL: (tutorial, partial(traced, tutorial_target, how=as_tutorial)),
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
            for base, label in [
                ("echo server", "recommender"),
                ("echo server", FIXED),
                ("echo server", LEARNING),
                (BARE, "echo server"),
                (BARE, FIXED),
                (BARE, "recommender"),
                (BARE, DEMO),
                (BARE, TUTORIAL),
                (UNTRACED, DEMO),
            ]:
                pairs = list(zip(samples[base], samples[label], strict=True))
                section.comparisons.append(Comparison.of(name, base, label, pairs))

            # Over mutual TLS, the tutorial's calls: the bare server, the
            # tutorial's and ours, each with the development certificates.
            tls_samples = rotate(
                mode.grpc_rounds,
                {
                    BARE + MTLS: partial(runner, bare_tls_target, how=as_tutorial_tls),
                    FIXED + MTLS: partial(runner, fixed_tls_target, how=as_tutorial_tls),
                    TUTORIAL + MTLS: partial(runner, tutorial_tls_target, how=as_tutorial_tls),
                    DEMO + MTLS: partial(runner, demo_tls_target, how=as_tutorial_tls),
                },
            )
            for base, label in [
                (BARE + MTLS, TUTORIAL + MTLS),
                (BARE + MTLS, DEMO + MTLS),
                (TUTORIAL + MTLS, DEMO + MTLS),
                (TUTORIAL + MTLS, BARE + MTLS),
                (TUTORIAL + MTLS, FIXED + MTLS),
            ]:
                pairs = list(zip(tls_samples[base], tls_samples[label], strict=True))
                section.comparisons.append(Comparison.of(name + " mTLS", base, label, pairs))
        # One call at a time over mutual TLS: the latency a page sees; the
        # fixed answer's, the least ours can have whatever the ranking costs,
        # and bare grpc.aio's, the least any asyncio server here can have.
        seeds1 = iter(range(1, 1000))

        def one_at_a_time(where: str) -> Callable[[], Sample]:
            return lambda: as_tutorial_tls(where, 1, mode.grpc_seconds, next(seeds1))

        one = rotate(
            mode.grpc_rounds,
            {
                TUTORIAL + MTLS: one_at_a_time(tutorial_tls_target),
                DEMO + MTLS: one_at_a_time(demo_tls_target),
                FIXED + MTLS: one_at_a_time(fixed_tls_target),
                BARE + MTLS: one_at_a_time(bare_tls_target),
            },
        )
        for label in (DEMO + MTLS, FIXED + MTLS, BARE + MTLS):
            pairs = list(zip(one[TUTORIAL + MTLS], one[label], strict=True))
            section.comparisons.append(
                Comparison.of("Recommend x1 mTLS", TUTORIAL + MTLS, label, pairs)
            )
        for label, use in cpu.items():
            section.figures.update(use.figures(f"x16, {label}", "call"))
        # Its consumer connected, no call and no sale: nothing to do.
        idle = idle_share([recommender.pid, learning.pid], mode.idle_seconds)
        section.figures["recommender: % of a core while idle"] = idle[recommender.pid]
        section.figures["recommender (learning): % of a core while idle"] = idle[learning.pid]
        section.targets.append(idle_target("recommender", idle[recommender.pid]))
        section.targets.append(idle_target("recommender (learning)", idle[learning.pid]))
        memory["recommender"] = recommender.peak_rss_mb()
        memory["recommender (learning)"] = learning.peak_rss_mb()
        memory["echo server (baseline)"] = echo.peak_rss_mb()
        memory["bare server (baseline)"] = bare.peak_rss_mb()
        memory["tutorial server (baseline)"] = tutorial.peak_rss_mb()
        section.figures["learning: sales published in its rounds"] = float(sales.published)
        # Those still queued when the last round ended are applied after it.
        section.figures["learning: sales applied by the end"] = float(
            events_applied(learning.text())
        )
    finally:
        sales.close()
        load.stop()
        for child in started:
            child.stop()
        delete_namespace(namespace, recommenders=["bench-learning"])
        learning_store.unlink(missing_ok=True)
    section.figures.update(engine_alone(store, mode.engine_calls, users))
    section.targets += recommender_targets(mode, section.comparisons)
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
        " over the x16 rounds. At 16 in flight every call carries a W3C traceparent (not"
        " sampled), as the site's gRPC client sends with tracing off."
    )
    section.notes.append(
        "'Tracing disabled' is the demo store's recommender started with"
        " OTEL_SDK_DISABLED=true: no span, the caller's trace context not read, log lines with"
        " '-'; the other servers have tracing off (OTEL_TRACES_EXPORTER=none, the default:"
        " the caller's context read and attached, no span). Checked before the rounds: each"
        " logs a refused call carrying a traceparent with the caller's trace id, or '-'."
    )
    section.notes.append(
        "The bare server is a grpc.aio server with no interceptor, health, reflection or"
        " logging, answering every call with the same ten-book reply serialized once. The"
        " tutorial server is what the seed tutorial builds: a synchronous grpc.server on a"
        " ThreadPoolExecutor(max_workers=10) serving its contract (protos/bookstore/legacy)"
        " from fixed lists (the demo catalog's books of its three categories) with"
        " random.sample. The 'demo store' recommender serves the demo catalog with"
        f" {mode.site_users} customers' orders. mTLS rounds: the tutorial's calls (its"
        " service name, its three categories) over mutual TLS with the development"
        " certificates (scripts/dev_certs.py, in var/bench/certs), to each server alike."
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
