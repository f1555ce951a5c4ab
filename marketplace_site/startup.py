"""What every process of the site does first (manage.py, gunicorn, Celery):
read the settings, stopping with one line on a wrong value, then make the
folders they name. Settings modules only read; nothing happens at import."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from events.environment import exit_on_config_error
from marketplace_site.tracing import instrument

_started = False


def start(*, traced: bool = True) -> None:
    """Once per process, whatever calls it first: manage.py, then runserver's
    wsgi.py or a module importing the Celery app, would each call it again.

    ``traced``: set up this process's tracing (marketplace_site.tracing); the
    tests set up their own."""
    global _started
    if _started:
        return
    _started = True
    with exit_on_config_error():
        settings.INSTALLED_APPS  # noqa: B018  (loads the settings module)
        if traced:
            instrument()
    for folder in folders():
        folder.mkdir(parents=True, exist_ok=True)


def folders() -> list[Path]:
    """The SQLite databases' folders, and the static files' (whitenoise looks there)."""
    database = settings.DATABASES["default"]
    names = [database["NAME"], (database.get("TEST") or {}).get("NAME")]
    sqlite = database["ENGINE"] == "django.db.backends.sqlite3"
    found = [Path(name).parent for name in names if sqlite and name and name != ":memory:"]
    return [*found, Path(settings.STATIC_ROOT)]
