"""A shared token on internal RPCs (RECOMMENDER_AUTH_TOKEN).

A second lock beside mutual TLS, or the only one where TLS ends at a proxy:
every call must carry ``authorization: Bearer <token>``, except health checks,
which probes make without credentials. The token is compared in constant time
and never logged; a caller without it gets UNAUTHENTICATED and a reason.
"""

from __future__ import annotations

import hmac

AUTHORIZATION = "authorization"
SCHEME = "bearer"
# Load balancers and container health checks probe without credentials.
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)

MISSING = "missing credentials: send metadata 'authorization: Bearer <token>'"
INVALID = "invalid credentials: the bearer token was not accepted"


class TokenCheck:
    """The shared bearer token a call must carry (recommender.calls refuses a
    call it finds a problem with; health checks are not asked)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("an empty token would let everyone in")
        self._expected = token.encode()

    def __repr__(self) -> str:  # the token stays out of any log of the server's parts
        return f"{type(self).__name__}(token=***)"

    def problem(self, metadata: tuple[tuple[str, str | bytes], ...]) -> str | None:
        values = [value for key, value in metadata if key == AUTHORIZATION]
        if not values:
            return MISSING
        scheme, _, presented = str(values[-1]).strip().partition(" ")
        if scheme.lower() != SCHEME:
            return MISSING
        # Constant time: how long a refusal takes tells nothing about the token.
        if not hmac.compare_digest(presented.strip().encode(), self._expected):
            return INVALID
        return None
