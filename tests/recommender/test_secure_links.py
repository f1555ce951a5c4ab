"""TLS, mutual TLS and the shared token on the recommender's port, with real
certificates (scripts/dev_certs.py) and real servers on port 0.

What an operator relies on: with RECOMMENDER_TLS_CLIENT_CA only clients with a
certificate from that CA get in (none, another CA's, plaintext: refused at the
handshake); with RECOMMENDER_AUTH_TOKEN every RPC but health checks needs the
token (UNAUTHENTICATED with a reason otherwise) and the token never reaches a
log; a half-done TLS configuration stops the server with a clear message; the
container health check keeps working over TLS.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bookstore.legacy import recommendations_pb2 as legacy_pb
from bookstore.legacy import recommendations_pb2_grpc as legacy_grpc
from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from recommender import healthcheck
from recommender.auth import AUTHORIZATION, INVALID, MISSING, TokenCheck
from recommender.config import REPO_ROOT, ConfigError, ServerTls, Settings
from recommender.engine import Book, Category, RecommendationIndex
from recommender.server import RunningServer, describe_security, start_server
from scripts.dev_certs import DevCerts, IncompleteSet, main, write_dev_certs
from tests.grpc_server import ServerThread
from tests.recommender.process import RecommenderProcess

TOKEN = "s3cret-token-for-the-tests-0123456789"
INDEX = RecommendationIndex.build(
    [
        Book(1, "Dune", "Frank Herbert", Category.SCIENCE_FICTION),
        Book(2, "Neuromancer", "William Gibson", Category.SCIENCE_FICTION),
    ],
    [],
)
REQUEST = pb.RecommendationRequest(user_id=0, category=pb.SCIENCE_FICTION, max_results=5)


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The metadata a client sends (none for an empty token)."""
    return ((AUTHORIZATION, f"Bearer {token}"),) if token else ()


Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start the real recommender (TLS and token as given); returns its 127.0.0.1 target."""
    thread = ServerThread()
    started: list[RunningServer] = []

    def serve(*, tls: ServerTls | None = None, auth_token: str = "") -> str:
        running = thread.run(
            start_server(listen="127.0.0.1:0", index=INDEX, tls=tls, auth_token=auth_token)
        )
        started.append(running)
        return f"127.0.0.1:{running.port}"

    yield serve
    for running in started:
        thread.run(running.server.stop(None))
    thread.close()


def mutual(certs: DevCerts) -> ServerTls:
    return ServerTls(cert=certs.server_cert, key=certs.server_key, client_ca=certs.ca)


def server_only(certs: DevCerts) -> ServerTls:
    return ServerTls(cert=certs.server_cert, key=certs.server_key)


def tls_channel(
    target: str,
    *,
    ca: Path,
    cert: Path | None = None,
    key: Path | None = None,
    server_name: str = "",
) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(target, credentials, options=options)


def recommend(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> list[int]:
    response = pb_grpc.RecommendationsStub(channel).Recommend(REQUEST, timeout=5, metadata=metadata)
    return [r.id for r in response.recommendations]


def refused(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value


def health(channel: grpc.Channel) -> int:
    # types-grpcio-health-checking's HealthStub declares none of its methods.
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]
    return reply.status


# --- mutual TLS ------------------------------------------------------------------------


def test_mutual_tls_answers_a_client_with_a_certificate_from_the_client_ca(certs, serve):
    target = serve(tls=mutual(certs))
    with tls_channel(target, ca=certs.ca, cert=certs.client_cert, key=certs.client_key) as ch:
        assert recommend(ch) == [1, 2]
        assert health(ch) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("client", ["no certificate", "another CA's certificate", "plaintext"])
def test_mutual_tls_refuses_a_client_without_a_valid_certificate(certs, other_ca, serve, client):
    target = serve(tls=mutual(certs))
    if client == "no certificate":
        channel = tls_channel(target, ca=certs.ca)
    elif client == "another CA's certificate":
        # It trusts our server, but its own certificate is signed by a CA the server does not know.
        channel = tls_channel(
            target, ca=certs.ca, cert=other_ca.client_cert, key=other_ca.client_key
        )
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        # Refused during the handshake: no RPC runs, health included.
        assert refused(lambda: recommend(channel)).code() is grpc.StatusCode.UNAVAILABLE
        assert refused(lambda: health(channel)).code() is grpc.StatusCode.UNAVAILABLE


# --- TLS (server certificate only) -------------------------------------------------------


def test_tls_without_a_client_ca_answers_any_client_that_trusts_the_server(certs, serve):
    target = serve(tls=server_only(certs))
    with tls_channel(target, ca=certs.ca) as channel:
        assert recommend(channel) == [1, 2]
    # The certificate names "recommender" (the compose service) too.
    with tls_channel(target, ca=certs.ca, server_name="recommender") as channel:
        assert recommend(channel) == [1, 2]


@pytest.mark.parametrize("client", ["trusts another CA", "expects another name", "plaintext"])
def test_tls_clients_refuse_a_server_they_cannot_verify(certs, other_ca, serve, client):
    target = serve(tls=server_only(certs))
    if client == "trusts another CA":
        channel = tls_channel(target, ca=other_ca.ca)
    elif client == "expects another name":
        channel = tls_channel(target, ca=certs.ca, server_name="elsewhere.example.com")
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        assert refused(lambda: recommend(channel)).code() is grpc.StatusCode.UNAVAILABLE


# --- the shared token -------------------------------------------------------------------


def test_without_the_token_every_rpc_is_unauthenticated_with_a_reason(serve):
    target = serve(auth_token=TOKEN)
    with grpc.insecure_channel(target) as channel:
        missing = refused(lambda: recommend(channel))
        assert missing.code() is grpc.StatusCode.UNAUTHENTICATED
        assert missing.details() == MISSING
        assert "authorization: Bearer <token>" in missing.details()

        wrong = refused(lambda: recommend(channel, bearer_metadata(TOKEN[:-1] + "X")))
        assert (wrong.code(), wrong.details()) == (grpc.StatusCode.UNAUTHENTICATED, INVALID)

        basic = refused(lambda: recommend(channel, (("authorization", f"Basic {TOKEN}"),)))
        assert basic.code() is grpc.StatusCode.UNAUTHENTICATED

        # A streaming RPC and the tutorial's service are guarded the same way.
        stub = pb_grpc.RecommendationsStub(channel)
        stream = refused(lambda: list(stub.RecommendStream(iter([REQUEST]), timeout=5)))
        assert stream.code() is grpc.StatusCode.UNAUTHENTICATED
        legacy = legacy_grpc.RecommendationsStub(channel)
        legacy_request = legacy_pb.RecommendationRequest(
            user_id=1, category=legacy_pb.SCIENCE_FICTION, max_results=1
        )
        tutorial = refused(lambda: legacy.Recommend(legacy_request, timeout=5))
        assert tutorial.code() is grpc.StatusCode.UNAUTHENTICATED


def test_with_the_token_calls_are_answered_and_health_needs_none(serve):
    target = serve(auth_token=TOKEN)
    with grpc.insecure_channel(target) as channel:
        assert recommend(channel, bearer_metadata(TOKEN)) == [1, 2]
        # The scheme is case-insensitive (RFC 6750).
        assert recommend(channel, (("authorization", f"bearer {TOKEN}"),)) == [1, 2]
        stub = pb_grpc.RecommendationsStub(channel)
        answers = stub.RecommendStream(
            iter([REQUEST, REQUEST]), timeout=5, metadata=bearer_metadata(TOKEN)
        )
        assert len(list(answers)) == 2
        # Probes carry no credentials.
        assert health(channel) == health_pb2.HealthCheckResponse.SERVING
    assert healthcheck.main([], env={"RECOMMENDER_LISTEN": target}) == 0


def test_token_and_mutual_tls_together(certs, serve):
    target = serve(tls=mutual(certs), auth_token=TOKEN)
    with tls_channel(target, ca=certs.ca, cert=certs.client_cert, key=certs.client_key) as ch:
        assert refused(lambda: recommend(ch)).code() is grpc.StatusCode.UNAUTHENTICATED
        assert recommend(ch, bearer_metadata(TOKEN)) == [1, 2]


def test_the_token_never_reaches_the_logs(serve, caplog):
    caplog.set_level(logging.DEBUG)
    target = serve(auth_token=TOKEN)
    with grpc.insecure_channel(target) as channel:
        recommend(channel, bearer_metadata(TOKEN))
        refused(lambda: recommend(channel, bearer_metadata(TOKEN + "-wrong")))
        refused(lambda: recommend(channel))
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    # The refused calls are in the access log, by status code only.
    assert "code=UNAUTHENTICATED" in logged
    assert TOKEN not in logged
    assert TOKEN not in repr(TokenCheck(TOKEN))
    assert TOKEN not in repr(Settings.from_env({"RECOMMENDER_AUTH_TOKEN": TOKEN}))
    assert describe_security(None, TOKEN) == "plaintext, bearer token required"


def test_the_process_logs_how_its_port_is_secured_but_never_the_token(certs, tmp_path):
    process = RecommenderProcess(
        {
            "RECOMMENDER_LISTEN": "127.0.0.1:0",
            "RECOMMENDER_DB": str(tmp_path / "recommender.sqlite3"),
            "RECOMMENDER_CONSUME_EVENTS": "false",
            "RECOMMENDER_LOG_LEVEL": "DEBUG",
            "RECOMMENDER_TLS_CERT": str(certs.server_cert),
            "RECOMMENDER_TLS_KEY": str(certs.server_key),
            "RECOMMENDER_TLS_CLIENT_CA": str(certs.ca),
            "RECOMMENDER_AUTH_TOKEN": TOKEN,
        }
    )
    try:
        port = process.wait_for(
            r"serving on 127\.0\.0\.1:(\d+) \(mutual TLS, bearer token required; loading"
        ).group(1)
        process.wait_for(r" ready$")
        target = f"127.0.0.1:{port}"
        with tls_channel(target, ca=certs.ca, cert=certs.client_cert, key=certs.client_key) as ch:
            assert recommend(ch, bearer_metadata(TOKEN))
            refused(lambda: recommend(ch, bearer_metadata("not-the-token-at-all")))
        process.wait_for(r"code=UNAUTHENTICATED")
    finally:
        process.stop()
    # And whatever it wrote that wait_for had not read yet.
    with contextlib.suppress(queue.Empty):
        while True:
            process.log.append(process.lines.get(timeout=0.5))
    assert TOKEN not in "".join(process.log)


# --- configuration ----------------------------------------------------------------------


def tls_env(certs: DevCerts, **extra: str) -> dict[str, str]:
    return {
        "RECOMMENDER_TLS_CERT": str(certs.server_cert),
        "RECOMMENDER_TLS_KEY": str(certs.server_key),
        **extra,
    }


def test_tls_settings_come_from_the_environment(certs):
    assert Settings.from_env({}).tls is None
    assert Settings.from_env(tls_env(certs)).tls == server_only(certs)
    settings = Settings.from_env(
        tls_env(certs, RECOMMENDER_TLS_CLIENT_CA=str(certs.ca), RECOMMENDER_AUTH_TOKEN=TOKEN)
    )
    assert settings.tls == mutual(certs)
    assert settings.auth_token == TOKEN


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (lambda c: {"RECOMMENDER_TLS_CERT": str(c.server_cert)}, "RECOMMENDER_TLS_KEY is missing"),
        (lambda c: {"RECOMMENDER_TLS_KEY": str(c.server_key)}, "RECOMMENDER_TLS_CERT is missing"),
        (
            lambda c: {"RECOMMENDER_TLS_CLIENT_CA": str(c.ca)},
            "RECOMMENDER_TLS_CLIENT_CA needs TLS",
        ),
        (
            lambda c: tls_env(c, RECOMMENDER_TLS_KEY=str(c.directory / "nope.pem")),
            r"RECOMMENDER_TLS_KEY: cannot read .*nope\.pem: No such file",
        ),
        (
            lambda c: tls_env(c, RECOMMENDER_TLS_CERT=str(c.directory)),
            "RECOMMENDER_TLS_CERT: cannot read .*: Is a directory",
        ),
        (
            lambda c: tls_env(c, RECOMMENDER_TLS_KEY=str(c.client_key)),
            "are not a usable certificate and unencrypted key pair",
        ),
        (
            lambda c: tls_env(c, RECOMMENDER_TLS_CLIENT_CA=str(REPO_ROOT / "README.md")),
            "RECOMMENDER_TLS_CLIENT_CA: .*README.md is not a PEM file",
        ),
        (lambda c: {"RECOMMENDER_AUTH_TOKEN": "short"}, "at least 16 printable ASCII"),
        (lambda c: {"RECOMMENDER_AUTH_TOKEN": "a token with spaces in it"}, "must not contain"),
    ],
)
def test_a_half_done_tls_or_token_configuration_is_a_clear_error(certs, env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env(certs))


def test_the_server_refuses_to_start_naming_the_missing_setting(certs):
    result = subprocess.run(
        [sys.executable, "-m", "recommender"],
        env={**os.environ, "RECOMMENDER_TLS_CERT": str(certs.server_cert)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "configuration error: set both RECOMMENDER_TLS_CERT and RECOMMENDER_TLS_KEY" in (
        result.stderr
    )


# --- the container health check over TLS -----------------------------------------------------


def health_env(target: str, certs: DevCerts, *, client: bool = True, **extra: str) -> dict:
    env = {
        "RECOMMENDER_LISTEN": f"0.0.0.0:{target.rsplit(':', 1)[1]}",
        **tls_env(certs, RECOMMENDER_TLS_CLIENT_CA=str(certs.ca)),
        "RECOMMENDER_TLS_CA": str(certs.ca),
        **extra,
    }
    if client:
        env["RECOMMENDER_TLS_CLIENT_CERT"] = str(certs.client_cert)
        env["RECOMMENDER_TLS_CLIENT_KEY"] = str(certs.client_key)
    return env


def test_the_health_check_speaks_mutual_tls_with_the_client_settings(certs, serve, capsys):
    target = serve(tls=mutual(certs), auth_token=TOKEN)
    assert healthcheck.main([], env=health_env(target, certs)) == 0
    assert "SERVING" in capsys.readouterr().out
    # As Docker runs it, in the service's environment.
    result = subprocess.run(
        [sys.executable, "-m", "recommender.healthcheck"],
        env={**os.environ, **health_env(target, certs)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_the_health_check_says_what_it_lacks_for_mutual_tls(certs, serve, capsys):
    target = serve(tls=mutual(certs))
    assert healthcheck.main([], env=health_env(target, certs, client=False)) == 1
    assert "set RECOMMENDER_TLS_CLIENT_CERT and RECOMMENDER_TLS_CLIENT_KEY" in (
        capsys.readouterr().err
    )


def test_the_health_check_refuses_a_server_it_cannot_verify(certs, other_ca, serve, capsys):
    target = serve(tls=server_only(certs))
    env = health_env(target, certs, client=False, RECOMMENDER_TLS_CA=str(other_ca.ca))
    del env["RECOMMENDER_TLS_CLIENT_CA"]
    assert healthcheck.main([], env=env) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err
    env["RECOMMENDER_TLS_CA"] = str(certs.ca)
    assert healthcheck.main([], env=env) == 0


# --- scripts/dev_certs.py -----------------------------------------------------------------


def test_dev_certs_name_the_server_for_local_and_compose_use(certs):
    server = x509.load_pem_x509_certificate(certs.server_cert.read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "recommender"} <= set(names.get_values_for_type(x509.DNSName))
    assert {str(a) for a in names.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1"}
    # Keys are for their owner only; certificates may be read by anyone.
    for key in (certs.ca_key, certs.server_key, certs.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(certs.ca.stat().st_mode) & 0o044


def test_dev_certs_are_kept_unless_forced(tmp_path, capsys):
    assert main(["--dir", str(tmp_path)]) == 0
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(first) == {p.name for p in DevCerts(tmp_path).files}

    assert main(["--dir", str(tmp_path)]) == 0
    assert "certificates exist" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first

    assert main(["--dir", str(tmp_path), "--force"]) == 0
    again = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert all(again[name] != first[name] for name in first)


def test_dev_certs_refuse_to_complete_a_partial_set(tmp_path, capsys):
    certs, written = write_dev_certs(tmp_path)
    assert written
    certs.client_key.unlink()
    with pytest.raises(IncompleteSet, match="--force"):
        write_dev_certs(tmp_path)
    assert main(["--dir", str(tmp_path)]) == 1
    assert "not the whole set" in capsys.readouterr().err


# --- compose ---------------------------------------------------------------------------------


def test_compose_passes_the_tls_settings_and_mounts_the_certificates_read_only(tmp_path):
    from tests.test_compose import ENV_EXAMPLE, env_lines, render, write_env

    inside = "/run/bookstore/certs"
    tls = {
        "RECOMMENDER_CERTS_DIR": str(tmp_path),
        "RECOMMENDER_TLS_CERT": f"{inside}/server.pem",
        "RECOMMENDER_TLS_KEY": f"{inside}/server-key.pem",
        "RECOMMENDER_TLS_CLIENT_CA": f"{inside}/ca.pem",
        "RECOMMENDER_TLS_CA": f"{inside}/ca.pem",
        "RECOMMENDER_TLS_CLIENT_CERT": f"{inside}/client.pem",
        "RECOMMENDER_TLS_CLIENT_KEY": f"{inside}/client-key.pem",
        "RECOMMENDER_AUTH_TOKEN": "change-me",
    }
    config = render(write_env(tmp_path / "tls.env", {**env_lines(ENV_EXAMPLE), **tls}))
    services = config["services"]
    recommenders = ("recommender-1", "recommender-2")
    for name in (*recommenders, "site", "worker"):
        env = services[name]["environment"]
        assert env["RECOMMENDER_TLS_CA"] == tls["RECOMMENDER_TLS_CA"], name
        assert env["RECOMMENDER_TLS_CLIENT_KEY"] == tls["RECOMMENDER_TLS_CLIENT_KEY"], name
        assert env["RECOMMENDER_AUTH_TOKEN"] == "change-me", name
        # The recommenders also mount their store's volume; that is the only other.
        [mount] = [m for m in services[name]["volumes"] if m["type"] == "bind"]
        assert (mount["source"], mount["target"]) == (str(tmp_path), inside)
        assert mount["read_only"] is True
    for name in recommenders:
        assert services[name]["environment"]["RECOMMENDER_TLS_CLIENT_CA"] == f"{inside}/ca.pem"
    # Only the listening side gets the server's key.
    assert "RECOMMENDER_TLS_KEY" not in services["site"]["environment"]
    # The relay never calls the recommender: it gets neither files nor token.
    relay = services["relay"]
    assert not [
        k for k in relay["environment"] if k.startswith(("RECOMMENDER_TLS", "RECOMMENDER_AUTH"))
    ]
    assert not relay.get("volumes")
