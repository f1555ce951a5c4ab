"""Hop 2: the home page with recommendations, without them, with tracing
disabled, and a bare view, each served by gunicorn and driven by a load
generator in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from bench.config import Mode
from bench.cpu import CpuUse, Pids, fixed, idle_share, idle_target, metered
from bench.hop_recommender import (
    OFF_VS_DISABLED,
    TRACE_ID,
    TRACEPARENT,
    recommender_store,
    start_grpc,
)
from bench.procs import (
    PYTHON,
    REPO_ROOT,
    VAR,
    Child,
    Driver,
    HarnessError,
    base_env,
    free_port,
)
from bench.stats import Comparison, Sample, Section, Target, rotate

# Issue 18's targets: the page with recommendations against the page without.
RATE_VS_WITHOUT = 0.9
P99_VS_WITHOUT = 1.2

# One per harness process: two runs at once must not share it.
SITE_DB = VAR / f"site-{os.getpid()}.sqlite3"


def site_env(**extra: str) -> dict[str, str]:
    return base_env(
        DJANGO_SETTINGS_MODULE="bench.site_settings",
        DATABASE_URL=f"sqlite:///{SITE_DB}",
        DJANGO_LOG_LEVEL="WARNING",
        **extra,
    )


def prepare_site(users: int) -> dict:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{SITE_DB}{suffix}").unlink(missing_ok=True)
    done = subprocess.run(
        [PYTHON, "-m", "bench.site_setup", str(users)],
        cwd=REPO_ROOT,
        env=site_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise HarnessError(f"site setup failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_gunicorn(name: str, **env: str) -> tuple[Child, int]:
    port = free_port()
    child = Child(
        name,
        [
            PYTHON,
            "-m",
            "gunicorn",
            "marketplace_site.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            "--worker-class=gthread",
            "--workers=2",
            "--threads=2",
            "--log-level=warning",
        ],
        site_env(**env),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return child, port
        except OSError:
            if child.proc.poll() is not None:
                break
            time.sleep(0.2)
    raise HarnessError(f"gunicorn {name} did not start:\n{child.text()[-3000:]}")


def expect_trace_read(name: str, port: int, expected: str) -> None:
    """Stops the hop unless the site serves a request carrying TRACEPARENT in
    the trace its row says: TRACE_ID with tracing off, "-" disabled."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/bench/trace", headers={"traceparent": TRACEPARENT}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        read = response.read().decode()
    if read != expected:
        raise HarnessError(f"site {name} read the caller's trace as {read!r}, not {expected!r}")


def run(mode: Mode, memory: dict[str, float]) -> Section:
    section = Section("Marketplace home page (gunicorn gthread, 2 workers x 2 threads)")
    data = prepare_site(mode.site_users)
    store = recommender_store(mode.site_users)
    recommender, target = start_grpc("site-recommender", [PYTHON, "-m", "recommender"], store)
    servers: dict[str, tuple[Child, int]] = {}
    load = None
    cpu = {name: CpuUse() for name in ("bare", "off", "on", "nocache", "untraced")}
    try:
        servers["on"] = start_gunicorn("site-on", RECOMMENDER_TARGET=target)
        servers["off"] = start_gunicorn(
            "site-off", RECOMMENDER_TARGET=target, RECOMMENDATIONS_ENABLED="false"
        )
        servers["nocache"] = start_gunicorn(
            "site-nocache", RECOMMENDER_TARGET=target, RECOMMENDATIONS_CACHE_SECONDS="0"
        )
        # The page with recommendations, OpenTelemetry's switch on: what
        # tracing off (every other server) is measured against.
        servers["untraced"] = start_gunicorn(
            "site-untraced", RECOMMENDER_TARGET=target, OTEL_SDK_DISABLED="true"
        )
        expect_trace_read("on", servers["on"][1], TRACE_ID)
        expect_trace_read("untraced", servers["untraced"][1], "-")
        load = Driver("http-load", "bench.http_load")
        home = ["/", *(f"/?category={slug}" for slug in data["slugs"])]

        def runner(server: str, paths: list[str], seconds: float) -> Sample:
            return Sample.from_dict(
                load.run(
                    port=servers[server][1],
                    paths=paths,
                    cookies=data["sessions"],
                    connections=mode.site_connections,
                    seconds=seconds,
                )
            )

        runners = {
            "bare": lambda: runner("on", ["/bench/bare"], mode.site_seconds),
            "off": lambda: runner("off", home, mode.site_seconds),
            "on": lambda: runner("on", home, mode.site_seconds),
            "nocache": lambda: runner("nocache", home, mode.site_seconds),
            "untraced": lambda: runner("untraced", home, mode.site_seconds),
        }
        for warm in runners.values():
            warm()

        def groups(server: str) -> dict[str, Pids]:
            site = servers[server][0]
            return {
                "site (gunicorn)": site.pids,
                "recommender": fixed(recommender.pid),
                "load generator": fixed(load.pid),
            }

        # Each round's server, whose CPU it is: the bare view is the "on" site's.
        served_by = {name: name for name in runners} | {"bare": "on"}
        samples = rotate(
            mode.site_rounds,
            {
                name: metered(run_, groups(served_by[name]), cpu[name])
                for name, run_ in runners.items()
            },
        )
        memory["site (gunicorn worker)"] = servers["on"][0].peak_rss_mb()
        # Nothing to serve: the master and its workers together.
        idle = sum(idle_share(servers["on"][0].pids(), mode.idle_seconds).values())
        section.figures["site (gunicorn): % of a core while idle"] = idle
        memory["recommender (demo catalog, for the site)"] = recommender.peak_rss_mb()
    finally:
        if load is not None:
            load.stop()
        for child, _ in servers.values():
            child.stop()
        recommender.stop()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SITE_DB}{suffix}").unlink(missing_ok=True)

    def compare(name: str, base: str, base_label: str, subject: str, label: str) -> Comparison:
        pairs = list(zip(samples[base], samples[subject], strict=True))
        return Comparison.of(name, base_label, label, pairs)

    with_recs = compare("home", "off", "switched off", "on", "with recommendations")
    tracing_off = compare(
        "home", "untraced", "tracing disabled", "on", "with recommendations (tracing off)"
    )
    section.comparisons += [
        with_recs,
        compare("home", "off", "switched off", "nocache", "with recommendations, no cache"),
        compare("home", "bare", "bare view", "off", "without recommendations"),
        compare("home", "bare", "bare view", "on", "with recommendations"),
        tracing_off,
    ]
    labels = {
        "on": "with recommendations",
        "off": "switched off",
        "nocache": "no cache",
        "bare": "bare view",
        "untraced": "tracing disabled",
    }
    for name, label in labels.items():
        section.figures.update(cpu[name].figures(label, "request"))
    section.targets += [
        Target(
            "home with recommendations vs without: requests/s",
            with_recs.rate_ratio,
            RATE_VS_WITHOUT,
            at_least=True,
        ),
        Target(
            "home with recommendations vs without: p99",
            with_recs.p99_ratio,
            P99_VS_WITHOUT,
            at_least=False,
        ),
        Target(
            "home with recommendations, tracing off vs disabled: requests/s",
            tracing_off.rate_ratio,
            OFF_VS_DISABLED,
            at_least=True,
        ),
        idle_target("site (gunicorn, master and workers)", idle),
    ]
    section.notes.append(
        f"{mode.site_users} signed-in customers with past orders, each connection one customer;"
        f" {mode.site_connections} keep-alive connections from one load-generator process;"
        " pages: / and /?category=<each category>. 'no cache' is the same server with"
        " RECOMMENDATIONS_CACHE_SECONDS=0 (one gRPC call per page: the design before the cache)."
        " CPU per request: the gunicorn master and workers, the recommender and the load"
        " generator (from /proc). 'tracing disabled' is the page with recommendations from a"
        " site started with OTEL_SDK_DISABLED=true (nothing instrumented, no trace ids);"
        " every other site has tracing off (OTEL_TRACES_EXPORTER=none, the default: Django's"
        " requests and the gRPC client instrumented, no span recorded), as checked before the"
        " rounds (/bench/trace with a traceparent: the caller's trace id, or '-'). Both ask"
        " the same recommender."
    )
    return section
