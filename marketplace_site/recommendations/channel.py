"""How the site opens its channels to the recommender: plaintext, TLS or mutual
TLS, and the shared token every call carries.

Settings (read by marketplace_site.env, checked at start-up):
RECOMMENDER_TLS_CA turns TLS on and is the CA the recommender's certificate
must chain to; RECOMMENDER_TLS_CLIENT_CERT / _KEY are the site's own
certificate when the recommender requires one; RECOMMENDER_TLS_SERVER_NAME
replaces the target's host as the name the certificate must carry;
RECOMMENDER_AUTH_TOKEN goes into every call's metadata. The page client, the
digest's stream and /readyz all open their channels here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

Options = Sequence[tuple[str, Any]]


@dataclass(frozen=True, slots=True)
class ChannelSecurity:
    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str = ""
    # Out of repr: it must not reach a log line or an error page.
    token: str = field(default="", repr=False)

    @property
    def tls(self) -> bool:
        return self.ca is not None or self.client_cert is not None

    @classmethod
    def from_settings(cls) -> ChannelSecurity:
        from django.conf import settings

        def path(value: str | Path | None) -> Path | None:
            return Path(value) if value else None

        return cls(
            ca=path(settings.RECOMMENDER_TLS_CA),
            client_cert=path(settings.RECOMMENDER_TLS_CLIENT_CERT),
            client_key=path(settings.RECOMMENDER_TLS_CLIENT_KEY),
            server_name=settings.RECOMMENDER_TLS_SERVER_NAME,
            token=settings.RECOMMENDER_AUTH_TOKEN,
        )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """What every call sends (the recommender's token check reads it)."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def credentials(self) -> grpc.ChannelCredentials:
        """TLS credentials; the files are read now (raises OSError when one is gone)."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes() if self.ca else None,
            private_key=self.client_key.read_bytes() if self.client_key else None,
            certificate_chain=self.client_cert.read_bytes() if self.client_cert else None,
        )

    def open_channel(self, target: str, options: Options = ()) -> grpc.Channel:
        """A channel to ``target``: TLS when configured, plaintext otherwise."""
        if not self.tls:
            return grpc.insecure_channel(target, options=list(options))
        extra = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
        return grpc.secure_channel(target, self.credentials(), options=[*options, *extra])
