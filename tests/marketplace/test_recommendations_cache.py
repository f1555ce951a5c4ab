"""The site's short-lived cache of recommender answers (RECOMMENDATIONS_CACHE_SECONDS,
in Django's cache), against a scripted recommender on a real gRPC port."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
import redis
from django.core.cache.backends import base as cache_base
from django.core.cache.backends import locmem
from django.utils import timezone

from bookstore.recommendations.v1 import recommendations_pb2 as pb
from marketplace_site.env import cache_settings
from marketplace_site.orders.models import Order
from marketplace_site.orders.services import order_checkout
from tests.marketplace import test_recommendations as pages
from tests.marketplace.test_recommendations import MYSTERY, calls_counted, recommendations_on

# The scripted recommender of the page tests, on its own port.
fake = pages.fake


class Clock:
    """The time Django's local-memory cache reads, to expire what it keeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch, settings) -> Clock:
    settings.RECOMMENDATIONS_CACHE_SECONDS = 30
    clock = Clock()
    monkeypatch.setattr(cache_base, "time", clock)
    monkeypatch.setattr(locmem, "time", clock)
    return clock


@pytest.mark.django_db
def test_an_answer_is_reused_within_the_ttl_and_asked_again_after(client, make_book, fake, clock):
    book = make_book()
    fake.answer_ids = [book.pk]
    ok, cached = calls_counted("ok"), calls_counted("cached")

    for _ in range(3):
        assert recommendations_on(client.get(MYSTERY)) == ("recommender", [book.pk])
    assert len(fake.calls) == 1
    assert (calls_counted("ok") - ok, calls_counted("cached") - cached) == (1, 2)

    clock.now += 29.9
    client.get(MYSTERY)
    assert len(fake.calls) == 1
    clock.now += 0.2
    assert recommendations_on(client.get(MYSTERY)) == ("recommender", [book.pk])
    assert len(fake.calls) == 2


@pytest.mark.django_db
def test_each_user_category_and_size_has_its_own_answer(client, make_book, make_user, fake, clock):
    fake.answer_ids = [make_book().pk]
    history = make_book(category="history")

    client.get("/?category=fantasy")
    client.get("/?category=romance")
    client.get(f"/books/{history.pk}/")  # another size: one more than the row holds
    client.force_login(make_user("bob"))
    client.get("/?category=fantasy")
    for path in ("/?category=fantasy", "/?category=romance", f"/books/{history.pk}/"):
        client.get(path)  # each answered from the cache now
    client.logout()
    client.get("/?category=fantasy")

    asked = [(c.request.user_id, c.request.category, c.request.max_results) for c in fake.calls]
    bob = asked[3][0]
    assert asked == [(0, 3, 6), (0, 6, 6), (0, 4, 7), (bob, 3, 6), (bob, 6, 6), (bob, 4, 7)]


@pytest.mark.django_db
def test_a_fallback_is_never_kept_as_the_recommenders_answer(client, make_book, fake, clock):
    book = make_book()
    fake.answer_ids = [book.pk]
    fake.script = [grpc.StatusCode.INTERNAL]

    assert recommendations_on(client.get(MYSTERY))[0] == "best-sellers"
    assert recommendations_on(client.get(MYSTERY)) == ("recommender", [book.pk])
    assert recommendations_on(client.get(MYSTERY)) == ("recommender", [book.pk])
    assert len(fake.calls) == 2


@pytest.mark.django_db
def test_zero_seconds_turns_the_cache_off(client, settings, make_book, fake, clock):
    settings.RECOMMENDATIONS_CACHE_SECONDS = 0
    fake.answer_ids = [make_book().pk]
    client.get(MYSTERY)
    client.get(MYSTERY)
    assert len(fake.calls) == 2


@pytest.mark.django_db
def test_a_cache_that_cannot_be_reached_costs_the_page_nothing(client, make_book, fake, settings):
    """Redis down: every page asks the recommender and shows its answer."""
    settings.CACHES = {"default": cache_settings("redis://127.0.0.1:1/0")}
    settings.RECOMMENDATIONS_CACHE_SECONDS = 30
    book = make_book()
    fake.answer_ids = [book.pk]
    assert recommendations_on(client.get(MYSTERY)) == ("recommender", [book.pk])
    assert recommendations_on(client.get(MYSTERY)) == ("recommender", [book.pk])
    assert len(fake.calls) == 2


@pytest.mark.django_db
def test_with_redis_an_answer_is_kept_for_every_process(
    client, make_book, fake, settings, redis_cache
):
    """CACHE_URL=redis://...: what one process asked, the others reuse."""
    settings.RECOMMENDATIONS_CACHE_SECONDS = 30
    book = make_book()
    fake.answer_ids = [book.pk]
    cached = calls_counted("cached")
    assert recommendations_on(client.get(MYSTERY)) == ("recommender", [book.pk])
    # In Redis, where every site process and replica reads it.
    keys = redis.Redis.from_url(redis_cache["LOCATION"]).keys(f"{redis_cache['KEY_PREFIX']}:*")
    assert [key.decode() for key in keys if b"recommendations:answer" in key]
    assert recommendations_on(client.get(MYSTERY)) == ("recommender", [book.pk])
    assert (len(fake.calls), calls_counted("cached") - cached) == (1, 1)


@pytest.mark.django_db
def test_a_customers_order_changes_their_next_page_in_spite_of_a_kept_answer(
    client, customer, make_book, fake, clock
):
    dune, emma, neuromancer = (make_book(title=t) for t in ("Dune", "Emma", "Neuromancer"))
    fake.answer_ids = [dune.pk, emma.pk]
    client.force_login(customer)
    assert recommendations_on(client.get("/")) == ("recommender", [dune.pk, emma.pk])
    assert recommendations_on(client.get("/")) == ("recommender", [dune.pk, emma.pk])
    assert len(fake.calls) == 1

    order_checkout(user=customer, items={dune.pk: 1})
    # What the recommender answers once it has learnt the purchase.
    fake.answer_ids = [neuromancer.pk, emma.pk]
    fake.reasons = {neuromancer.pk: (pb.BOUGHT_TOGETHER, "Dune")}

    response = client.get("/")
    assert recommendations_on(response) == ("recommender", [neuromancer.pk, emma.pk])
    assert "Bought with Dune" in response.content.decode()
    assert len(fake.calls) == 2


@pytest.mark.django_db
def test_a_book_just_bought_is_not_offered_by_a_recommender_yet_to_learn_it(
    client, customer, make_book, fake, clock
):
    dune, emma = make_book(title="Dune"), make_book(title="Emma")
    fake.answer_ids = [dune.pk, emma.pk]  # the purchase not learnt yet
    client.force_login(customer)
    order_checkout(user=customer, items={dune.pk: 1})

    assert recommendations_on(client.get("/")) == ("recommender", [emma.pk])
    # Not kept while the order is this fresh: the recommender learns it in a moment.
    assert recommendations_on(client.get("/")) == ("recommender", [emma.pk])
    assert len(fake.calls) == 2

    # An order older than an answer is kept: answers are kept again.
    Order.objects.filter(user=customer).update(created_at=timezone.now() - timedelta(seconds=31))
    client.get("/")
    client.get("/")
    assert len(fake.calls) == 3
