"""A customer's browser over real HTTP, for tests against a running site."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPResponse
from http.cookiejar import CookieJar


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Shopper:
    """A customer's HTTP client: cookies, the CSRF token, no automatic redirects.

    Its cookie jar is shared by every request, as a browser's is by its tabs.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirects()
        )

    def request(
        self, path: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> HTTPResponse | urllib.error.HTTPError:
        body = None
        if data is not None:
            body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self.csrf()}).encode()
        request = urllib.request.Request(f"{self.base}{path}", body, headers=headers or {})
        try:
            return self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as response:  # 3xx and 4xx land here
            return response

    def csrf(self) -> str:
        [token] = [c.value for c in self.cookies if c.name == "csrftoken"]
        assert token is not None, "a csrftoken cookie without a value"
        return token

    def log_in(self, username: str, password: str) -> None:
        assert self.request("/accounts/login/").status == 200
        logged_in = self.request("/accounts/login/", {"username": username, "password": password})
        assert logged_in.status == 302, logged_in.read()[-2000:]
