"""Fixtures shared by the marketplace and events tests: catalog, customers, promotions."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from marketplace_site.catalog.models import Book, Category
from marketplace_site.catalog.search import book_search_key
from marketplace_site.catalog.services import categories_ensure
from marketplace_site.promotions.models import Promotion
from marketplace_site.recommendations.selectors import reset_recommender_client
from marketplace_site.startup import start
from marketplace_site.vouchers.models import Voucher, VoucherRule
from marketplace_site.vouchers.services import voucher_code_for
from scripts.dev_certs import DevCerts, write_dev_certs
from tests.cluster import cluster, on_cluster  # noqa: F401  (fixtures, shared)
from tests.mail_servers import MailServer
from tests.tracing import SPANS, trace_the_tests

_ids = itertools.count(1000)


def pytest_configure(config) -> None:
    # As every process of the site starts: the folders its settings name (var/);
    # traces kept in memory (tests/tracing.py) instead of as the variables say.
    start(traced=False)
    trace_the_tests()


@pytest.fixture(autouse=True)
def _fresh_spans() -> None:
    SPANS.clear()


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> DevCerts:
    """A development CA with a recommender server and a site client certificate."""
    return write_dev_certs(tmp_path_factory.mktemp("certs"))[0]


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory) -> DevCerts:
    """A second, unrelated CA with certificates of its own: trusted by no one here."""
    return write_dev_certs(tmp_path_factory.mktemp("other-ca"))[0]


@pytest.fixture(autouse=True)
def _fresh_recommender_client():
    """Each test's settings decide the client's target, deadline and breaker."""
    reset_recommender_client()
    yield
    reset_recommender_client()


@pytest.fixture
def categories(db) -> dict[str, Category]:
    return {c.slug: c for c in categories_ensure().values()}


@pytest.fixture
def make_book(categories):
    def make_book(
        price: str = "10.00", *, category: str = "mystery", stock: int = 10, **fields
    ) -> Book:
        book_id = next(_ids)
        fields.setdefault("title", f"Book {book_id}")
        fields.setdefault("author", "An Author")
        # As book_save keeps it, without the event book_save would record.
        key = book_search_key(title=fields["title"], author=fields["author"])
        fields.setdefault("search_key", key)
        return Book.objects.create(
            id=book_id,
            price=Decimal(price),
            category=categories[category],
            stock=stock,
            **fields,
        )

    return make_book


@pytest.fixture
def make_user(db):
    def make_user(username: str = "reader", **fields) -> User:
        fields.setdefault("email", f"{username}@example.com")
        return User.objects.create_user(
            username=username, password="correct horse battery", **fields
        )

    return make_user


@pytest.fixture
def customer(make_user) -> User:
    return make_user("alice")


@pytest.fixture
def staff(make_user) -> User:
    """A member of staff who may do anything in the admin."""
    return make_user("manager", is_staff=True, is_superuser=True)


@pytest.fixture
def make_promotion(db):
    def make_promotion(**fields) -> Promotion:
        now = timezone.now()
        fields.setdefault("name", "Buy 2, get the cheapest free")
        fields.setdefault("starts_at", now - timedelta(days=1))
        fields.setdefault("ends_at", now + timedelta(days=7))
        return Promotion.objects.create(**fields)

    return make_promotion


@pytest.fixture
def make_rule(db):
    def make_rule(**fields) -> VoucherRule:
        fields.setdefault("name", "Thank you")
        fields.setdefault("nth_purchase", 3)
        fields.setdefault("percent_off", Decimal("10"))
        return VoucherRule.objects.create(**fields)

    return make_rule


@pytest.fixture
def make_voucher(db, make_rule):
    """A voucher granted to ``owner`` (for an order 1), by a rule of its own."""

    def make_voucher(owner, *, percent_off: str = "10", **fields) -> Voucher:
        rule = fields.pop("rule", None) or make_rule(nth_purchase=1, percent_off=percent_off)
        return Voucher.objects.create(
            code=voucher_code_for(rule_id=rule.pk, owner_id=owner.pk),
            owner=owner,
            rule=rule,
            percent_off=Decimal(percent_off),
            granted_for_order_id=1,
            **fields,
        )

    return make_voucher


@pytest.fixture(autouse=True)
def _postgres_only(request):
    """Tests marked postgres need it: fail loudly elsewhere, never skip."""
    if request.node.get_closest_marker("postgres") is None:
        return
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail(
            "this test needs PostgreSQL: run it with DATABASE_URL=postgres://... "
            "(make test does), or deselect it with -m 'not postgres'"
        )


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test counts its own requests (the throttles live in the cache)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def mail_server(settings):
    """``start(refused=[...], smtputf8=False)``: a MailServer that the site's
    SMTP backend (production's) sends this test's e-mails to."""
    servers: list[MailServer] = []

    def start(*, refused: Sequence[str] = (), smtputf8: bool = False) -> MailServer:
        server = MailServer(refused, smtputf8=smtputf8)
        servers.append(server)
        settings.EMAIL_BACKEND = "marketplace_site.notifications.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = False, 5
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def redis_cache(settings) -> dict[str, str]:
    """Django's cache in the local Redis, under a prefix of this test's own."""
    from marketplace_site.env import cache_settings

    prefix = f"test-{uuid.uuid4().hex[:10]}"
    cache = {**cache_settings("redis://127.0.0.1:6379/15"), "KEY_PREFIX": prefix}
    settings.CACHES = {"default": cache}
    return cache
