"""How a client reaches the recommender: the settings the site and the
recommender's own health check share, read by the rules the server applies
to the same values (the token, the TLS files).

Here, beside the other shared contracts, because the site and the
recommender import nothing of each other (pyproject.toml's import-linter
contracts).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from events.environment import CaFile, EnvSettings, PemFile, check_key_pair

# Shorter is guessable; gRPC metadata values must be printable ASCII.
MIN_TOKEN_LENGTH = 16


def _token(token: str) -> str:
    # Never echo the value: the message ends up in logs.
    if len(token) < MIN_TOKEN_LENGTH or not (token.isascii() and token.isprintable()):
        raise ValueError(
            f"must be at least {MIN_TOKEN_LENGTH} printable ASCII characters "
            "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if " " in token:
        raise ValueError("must not contain spaces")
    return token


# The shared secret of the site and the recommender: both refuse the same values.
AuthToken = Annotated[str, AfterValidator(_token)]


@dataclass(frozen=True, slots=True)
class ClientTls:
    """What a client of this server trusts and presents (the site, the health check)."""

    # None: gRPC's bundled public roots.
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    # The name to expect in the server's certificate instead of the target's host.
    server_name: str = ""


class RecommenderLink(EnvSettings):
    """How a client reaches the recommender: the site's settings, and the health
    check's, read by the same rules as the server's."""

    # The CA the server's certificate must chain to; turns TLS on for the site.
    recommender_tls_ca: CaFile | None = None
    # The client's own pair, for a server that requires one (mutual TLS).
    recommender_tls_client_cert: PemFile | None = None
    recommender_tls_client_key: PemFile | None = None
    recommender_tls_server_name: str = ""
    # Sent as "authorization: Bearer <token>"; must be the server's.
    recommender_auth_token: AuthToken = Field("", repr=False)

    @model_validator(mode="after")
    def _client_pair(self) -> RecommenderLink:
        check_key_pair(
            ("RECOMMENDER_TLS_CLIENT_CERT", self.recommender_tls_client_cert),
            ("RECOMMENDER_TLS_CLIENT_KEY", self.recommender_tls_client_key),
        )
        return self

    @property
    def client_tls(self) -> ClientTls:
        return ClientTls(
            ca=self.recommender_tls_ca,
            cert=self.recommender_tls_client_cert,
            key=self.recommender_tls_client_key,
            server_name=self.recommender_tls_server_name,
        )
