"""One set of rules for every process's environment: a value means the same to
the site and to the recommender, every variable read is documented, and a
wrong one stops each process with one line naming it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from events.amqp import BrokerEnv
from events.environment import ConfigError
from events.recommender_link import RecommenderLink
from events.tracing import TracingEnv
from marketplace_site.env import ProductionEnv, SiteEnv
from recommender.config import Settings
from tests.processes import REPO_ROOT, child_env, procfile_process

TOKEN = "s3cret-token-for-the-tests-0123456789"
MODELS = (SiteEnv, ProductionEnv, Settings, RecommenderLink, BrokerEnv, TracingEnv)


def every_variable() -> set[str]:
    return {model.variable(field) for model in MODELS for field in model.model_fields}


# --- the same value means the same thing everywhere -------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Empty or blank: the default (the site once read `VAR=` as false).
        ("", True),
        ("  ", True),
        ("1", True),
        (" YES ", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("off", False),
    ],
)
def test_a_boolean_reads_the_same_for_the_site_and_the_recommender(value, expected):
    assert SiteEnv.from_env({"RECOMMENDATIONS_ENABLED": value}).recommendations_enabled is expected
    assert Settings.from_env({"RECOMMENDER_CONSUME_EVENTS": value}).consume_events is expected


def test_a_word_that_is_no_boolean_is_refused_by_both():
    with pytest.raises(ConfigError, match="RECOMMENDATIONS_ENABLED must be true or false"):
        SiteEnv.from_env({"RECOMMENDATIONS_ENABLED": "maybe"})
    with pytest.raises(ConfigError, match="RECOMMENDER_CONSUME_EVENTS must be true or false"):
        Settings.from_env({"RECOMMENDER_CONSUME_EVENTS": "maybe"})


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("short", "must be at least 16 printable ASCII"),
        ("ünïcode-token-0123456789", "must be at least 16 printable ASCII"),
        ("a token with spaces in it", "must not contain spaces"),
    ],
)
def test_the_site_sends_only_a_token_the_recommender_accepts(token, message):
    for model in (SiteEnv, RecommenderLink, Settings):
        with pytest.raises(ConfigError, match=f"RECOMMENDER_AUTH_TOKEN {message}") as refused:
            model.from_env({"RECOMMENDER_AUTH_TOKEN": token})
        assert token not in str(refused.value)


def test_a_good_token_is_the_same_on_both_sides_and_kept_out_of_repr():
    site = SiteEnv.from_env({"RECOMMENDER_AUTH_TOKEN": f" {TOKEN} "})
    server = Settings.from_env({"RECOMMENDER_AUTH_TOKEN": TOKEN})
    assert site.recommender_auth_token == server.auth_token == TOKEN
    assert TOKEN not in repr(site) + repr(server)


def test_tls_files_are_checked_alike_by_the_site_and_the_recommenders_clients(certs, tmp_path):
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate\n")
    cases = [
        ({"RECOMMENDER_TLS_CA": str(not_pem)}, r"RECOMMENDER_TLS_CA: .*ca\.txt is not a PEM file"),
        ({"RECOMMENDER_TLS_CA": str(tmp_path / "gone.pem")}, "RECOMMENDER_TLS_CA: cannot read"),
        (
            {"RECOMMENDER_TLS_CLIENT_CERT": str(certs.client_cert)},
            "set both RECOMMENDER_TLS_CLIENT_CERT and RECOMMENDER_TLS_CLIENT_KEY",
        ),
        (
            {
                "RECOMMENDER_TLS_CLIENT_CERT": str(certs.client_cert),
                "RECOMMENDER_TLS_CLIENT_KEY": str(certs.server_key),
            },
            "are not a usable certificate and unencrypted key pair",
        ),
    ]
    for env, message in cases:
        # The site, and the recommender's own health check (a client like the site).
        for model in (SiteEnv, RecommenderLink):
            with pytest.raises(ConfigError, match=message):
                model.from_env(env)


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
def test_a_duration_is_refused_alike_by_the_site_and_the_recommender(value):
    with pytest.raises(ConfigError, match=f"RECOMMENDER_TIMEOUT must be .*got '{value}'"):
        SiteEnv.from_env({"RECOMMENDER_TIMEOUT": value})
    with pytest.raises(ConfigError, match=f"RECOMMENDER_GRACE_SECONDS must be .*got '{value}'"):
        Settings.from_env({"RECOMMENDER_GRACE_SECONDS": value})


def test_the_broker_settings_are_one_model_for_every_process():
    env = {"AMQP_URL": "amqp://u:secret@mq:5672/;mq-2", "EVENTS_DELIVERY_LIMIT": "3"}
    messages = set()
    for model in (SiteEnv, Settings, BrokerEnv):
        with pytest.raises(ConfigError) as refused:
            model.from_env(env)
        messages.add(str(refused.value))
    assert messages == {
        "AMQP_URL entry 'mq-2' is not a broker URL (scheme 'missing'); expected "
        "amqp[s]://user:password@host:port/vhost, several separated by ';'"
    }
    env["AMQP_URL"] = "amqp://u:secret@mq:5672/"
    assert SiteEnv.from_env(env).topology == Settings.from_env(env).topology


def test_a_secret_is_read_from_the_file_its_FILE_variable_names(tmp_path):
    """Docker secrets are files (/run/secrets/...): <VAR>_FILE names one, for any variable."""
    (tmp_path / "token").write_text(f"{TOKEN}\n")
    (tmp_path / "amqp_url").write_text("amqp://shop:pw@mq:5672/\n")
    files = {
        "RECOMMENDER_AUTH_TOKEN_FILE": str(tmp_path / "token"),
        "AMQP_URL_FILE": str(tmp_path / "amqp_url"),
    }
    site, server = SiteEnv.from_env(files), Settings.from_env(files)
    assert site.recommender_auth_token == server.auth_token == TOKEN
    assert RecommenderLink.from_env(files).recommender_auth_token == TOKEN
    assert BrokerEnv.from_env(files).amqp_url == "amqp://shop:pw@mq:5672/"


def test_a_secret_file_is_checked_like_the_variable_and_never_shown(tmp_path):
    (tmp_path / "short").write_text("short\n")
    (tmp_path / "token").write_text(TOKEN)
    cases = [
        (
            {"RECOMMENDER_AUTH_TOKEN_FILE": str(tmp_path / "short")},
            "RECOMMENDER_AUTH_TOKEN must be at least 16",
        ),
        (
            {"RECOMMENDER_AUTH_TOKEN_FILE": str(tmp_path / "gone")},
            "RECOMMENDER_AUTH_TOKEN_FILE: cannot read .*gone",
        ),
        (
            {
                "RECOMMENDER_AUTH_TOKEN_FILE": str(tmp_path / "token"),
                "RECOMMENDER_AUTH_TOKEN": TOKEN,
            },
            "set RECOMMENDER_AUTH_TOKEN or RECOMMENDER_AUTH_TOKEN_FILE, not both",
        ),
    ]
    for environ, message in cases:
        for model in (SiteEnv, Settings):
            with pytest.raises(ConfigError, match=message) as refused:
                model.from_env(environ)
            assert TOKEN not in str(refused.value)
            assert "'short'" not in str(refused.value)


def test_only_variables_named_in_capitals_are_read():
    assert Settings.from_env({"recommender_listen": "0.0.0.0:1"}).listen == "127.0.0.1:50051"


# --- documented ---------------------------------------------------------------------------


CONFIGURATION = REPO_ROOT / "docs" / "configuration.md"


def configuration_table_names() -> list[list[str]]:
    """The names in the first column of each row of the table of variables
    (docs/configuration.md, which the README's Configuration links to)."""
    lines = CONFIGURATION.read_text().splitlines()
    rows = [line.split("|")[1] for line in lines if line.startswith("| `")]
    return [re.findall(r"`([A-Z_][A-Z0-9_]*)`", row) for row in rows]


def documented_in_the_table(variable: str) -> bool:
    """Named in a row, or as a suffix of a name there (`RECOMMENDER_TLS_CERT` / `_KEY`)."""
    for names in configuration_table_names():
        full = [n for n in names if not n.startswith("_")]
        if variable in full:
            return True
        for name in full:
            for suffix in (n for n in names if n.startswith("_")):
                if any(name[:k] + suffix == variable for k in range(len(name))):
                    return True
    return False


# Read by a library itself (and by the site after it: test_nothing_else_reads_the_environment).
LIBRARIES_VARIABLES = {"PROMETHEUS_MULTIPROC_DIR"}


def test_every_variable_read_is_in_env_example_and_the_table():
    example = (REPO_ROOT / ".env.example").read_text()
    read = every_variable() | LIBRARIES_VARIABLES
    missing_example = {v for v in read if not re.search(rf"^(# )?{v}=", example, re.MULTILINE)}
    missing_table = {v for v in read if not documented_in_the_table(v)}
    assert not missing_example, f"not in .env.example: {sorted(missing_example)}"
    assert not missing_table, f"not in docs/configuration.md's table: {sorted(missing_table)}"
    readme = (REPO_ROOT / "README.md").read_text()
    configuration = readme[readme.index("## Configuration") :].split("\n## ", 1)[0]
    assert "](docs/configuration.md)" in configuration


def test_nothing_else_reads_the_environment():
    """Every variable goes through the one reader: no os.environ.get / getenv in the
    services' code (setting a default for a child process is fine)."""
    reads = re.compile(r"os\.environ\.get|os\.getenv|os\.environ\[")
    found = [
        f"{path.relative_to(REPO_ROOT)}: {line.strip()}"
        for package in ("events", "recommender", "marketplace_site")
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        for line in path.read_text().splitlines()
        if reads.search(line)
    ]
    # prometheus_client's own switch, which it reads itself.
    assert found == [
        'marketplace_site/metrics.py: if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):'
    ], found


# --- a wrong value stops the process, naming it ------------------------------------------


def assert_stopped_naming(code: int, output: str, variable: str) -> None:
    assert code == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    [said] = [line for line in output.splitlines() if variable in line]
    assert said.startswith("configuration error: "), output[-3000:]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("process", "variable", "value"),
    [
        ("recommender", "RECOMMENDER_GRACE_SECONDS", "soon"),
        ("web", "RECOMMENDATIONS_ENABLED", "maybe"),
        ("relay", "RELAY_BATCH_SIZE", "0"),
        ("relay", "RELAY_POLL_INTERVAL", "-1"),
        ("worker", "EVENTS_PREFETCH", "many"),
        ("beat", "RECOMMENDER_AUTH_TOKEN", "short"),
    ],
)
def test_a_wrong_value_stops_each_procfile_process_with_one_line(
    process, variable, value, tmp_path
):
    env = child_env(**{variable: value}, RECOMMENDER_DB=str(tmp_path / "store.sqlite3"))
    started = procfile_process(process, env)
    try:
        code = started.proc.wait(60)
    finally:
        started.stop()
    assert_stopped_naming(code, started.text(), variable)


@pytest.mark.parametrize(
    "command",
    [
        ["-c", "import marketplace_site.wsgi"],  # what gunicorn loads
        ["-m", "events", "dead-letters", "list"],
        ["-m", "recommender.healthcheck"],
    ],
)
def test_the_other_entry_points_stop_alike(command):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "marketplace_site.settings.local",
        "EVENTS_DELIVERY_LIMIT": "0",
    }
    result = subprocess.run(
        [sys.executable, *command],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    if command[-1] == "recommender.healthcheck":
        # Docker reserves 2: the health check says "unhealthy" and exits 1.
        assert result.returncode == 1, output
        assert "unhealthy: EVENTS_DELIVERY_LIMIT must be a whole number >= 1" in output
        return
    assert_stopped_naming(result.returncode, output, "EVENTS_DELIVERY_LIMIT")
