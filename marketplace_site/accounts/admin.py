from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

from marketplace_site.accounts.forms import ShopUserChangeForm
from marketplace_site.admin_base import ShopModelAdmin

# Django's own, with the shop's checks (admin_base).
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class ShopUserAdmin(UserAdmin, ShopModelAdmin):
    form = ShopUserChangeForm


@admin.register(Group)
class ShopGroupAdmin(GroupAdmin, ShopModelAdmin):
    pass
