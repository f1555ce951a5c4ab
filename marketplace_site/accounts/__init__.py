"""Sign-up; log in and out come from django.contrib.auth."""
