"""Django settings of the benchmark's site, relay and worker processes.

The local settings, served as in production (DEBUG off, gunicorn), plus a
bare view for the baseline, and the worker's consumers chosen by the bench
(BENCH_CONSUMERS_FACTORY: the real handlers, or ack-only ones).
"""

import os

from marketplace_site.settings.local import *  # noqa: F403
from marketplace_site.settings.local import CELERY_EVENTS_CONSUMERS_FACTORY

DEBUG = False
ROOT_URLCONF = "bench.site_urls"
CELERY_EVENTS_CONSUMERS_FACTORY = (
    os.environ.get("BENCH_CONSUMERS_FACTORY") or CELERY_EVENTS_CONSUMERS_FACTORY
)
