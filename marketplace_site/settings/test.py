"""The test suite: fast hashing, in-memory e-mail, a short recommender deadline."""

from marketplace_site.env import SiteEnv
from marketplace_site.settings.base import *  # noqa: F403


class _TestEnv(SiteEnv):
    # Each test points the client at its own server (or at nothing).
    recommender_target: str = "127.0.0.1:1"


DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
RECOMMENDER_TARGET = _TestEnv.from_env().recommender_target
# Tests count the calls that reach the recommender; the cache's own test turns it on.
RECOMMENDATIONS_CACHE_SECONDS = 0.0
# Cleared around every test (tests/conftest.py): never a Redis a CACHE_URL in
# the environment names. The Redis test sets its own.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import os

    # A file, not memory: worker and relay processes started by the tests
    # open the same test database. One per test run, so runs never collide.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(REPO_ROOT / "var" / f"test-{os.getpid()}.sqlite3")  # noqa: F405
    }
