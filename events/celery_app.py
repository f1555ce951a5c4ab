"""The Celery application: Django-aware, with the domain-event ConsumerStep.

celery -A events.celery_app worker   # tasks and domain events
celery -A events.celery_app beat     # the weekly digest schedule
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

from events.celery_consumer import DomainEventConsumerStep
from events.metrics import serve_metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace_site.settings.local")

app = Celery("bookstore")
# CELERY_* Django settings configure it (broker, schedule, the consumers).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.steps["consumer"].add(DomainEventConsumerStep)


@worker_init.connect
def _serve_metrics(**kwargs: object) -> None:
    # One worker process per host in our setup (--pool=solo or threads).
    serve_metrics("WORKER_METRICS_PORT")
