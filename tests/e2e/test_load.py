"""loadtest/locustfile.py, headless for a short while against the session's
`make run` stack: no request may fail, and customers do buy (the promotion
surge included)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

from tests.e2e.conftest import ARTIFACTS, REPO_ROOT

SECONDS = 20
SURGE_USERS = 4


def test_browsing_buying_and_a_promotion_surge_without_a_single_error(stack, tmp_path):
    stats = tmp_path / "locust"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(REPO_ROOT / "loadtest" / "locustfile.py"),
            "--headless",
            "--host",
            stack,
            "-u",
            "12",
            "-r",
            "6",
            "-t",
            f"{SECONDS}s",
            "--stop-timeout",
            "10",
            "--only-summary",
            "--csv",
            str(stats),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "LOCUST_SURGE_USERS": str(SURGE_USERS)},
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
        check=False,
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "locust.txt").write_text(result.stdout + result.stderr)
    rows = {row["Name"]: row for row in csv.DictReader(stats.with_name("locust_stats.csv").open())}
    summary = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"

    assert result.returncode == 0, summary
    total = rows["Aggregated"]
    assert int(total["Failure Count"]) == 0, summary
    assert int(total["Request Count"]) > 100, summary
    # Every surge customer checked out, at the same moment, and so did buyers;
    # each order page was seen, with the promotion's discount on it.
    surge = int(rows["/checkout/ (surge)"]["Request Count"])
    checkouts = int(rows["/checkout/"]["Request Count"])
    assert surge == SURGE_USERS, summary
    assert checkouts >= 1, summary
    assert int(rows["/orders/[id]/"]["Request Count"]) == surge + checkouts
