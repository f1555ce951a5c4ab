"""The Celery application: Django-aware, with the domain-event ConsumerStep.

celery -A events.celery_app worker   # tasks and domain events
celery -A events.celery_app beat     # the weekly digest schedule
"""

from __future__ import annotations

import os
from typing import ClassVar

from celery import Celery
from celery.signals import worker_init
from celery.worker.consumer import Consumer
from django.conf import settings

from events.celery_consumer import DomainEventConsumerStep
from events.metrics import serve_metrics
from marketplace_site.startup import start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace_site.settings.local")
start()


class WorkerConsumer(Consumer):
    """Celery's consumer without native delayed delivery.

    Celery turns it on for quorum queues, but it serves topic exchanges only
    (the task queue's is direct: nothing to gain), declares 28 exchanges and
    queues outside our namespace, and retries each node of AMQP_URL in turn
    whenever the consumer restarts: a lost node held every queue of the
    worker for about 15 s. No task of ours has an ETA or countdown.
    """

    class Blueprint(Consumer.Blueprint):
        default_steps: ClassVar[list[str]] = [
            step
            for step in Consumer.Blueprint.default_steps
            if step != "celery.worker.consumer.delayed_delivery:DelayedDelivery"
        ]


app = Celery("bookstore")
# CELERY_* Django settings configure it (broker, schedule, the consumers).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.worker_consumer = f"{__name__}:WorkerConsumer"
app.autodiscover_tasks()
app.steps["consumer"].add(DomainEventConsumerStep)


@worker_init.connect
def _serve_metrics(**kwargs: object) -> None:
    # One worker process per host in our setup (--pool=solo or threads).
    serve_metrics(
        settings.WORKER_METRICS_PORT, address=settings.METRICS_ADDR, variable="WORKER_METRICS_PORT"
    )
