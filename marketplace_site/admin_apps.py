"""django.contrib.admin with the shop's own site as admin.site. Apart from
admin_site.py: an app's config is imported before any model can be."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class BookstoreAdminConfig(AdminConfig):
    default_site = "marketplace_site.admin_site.BookstoreAdminSite"
