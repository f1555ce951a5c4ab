"""One account per e-mail address, in any case.

Existing accounts' addresses are first rewritten in the one spelling the shop
keeps (accounts/addresses.py: lower case, the domain in Unicode). If two or
more accounts then share an address, the migration stops and names them:
which account keeps the address is a decision for the shop, not for a
migration (a reset link e-mailed there reaches whoever reads it, and order
confirmations go there). Give each account its own address in the admin
(Users), or clear it on all but one, then migrate again.
"""

from django.conf import settings
from django.db import migrations

INDEX = "accounts_user_email_unique_ci"


def normalize_addresses_refusing_shared_ones(apps, schema_editor):
    from marketplace_site.accounts.addresses import address_normalize

    users = apps.get_model(settings.AUTH_USER_MODEL).objects
    owners: dict[str, list[int]] = {}
    for pk, email in users.exclude(email="").values_list("pk", "email"):
        owners.setdefault(address_normalize(email), []).append(pk)
    shared = {address: ids for address, ids in owners.items() if len(ids) > 1}
    if shared:
        listed = "; ".join(
            f"{address}: accounts {', '.join(map(str, ids))}" for address, ids in sorted(shared.items())
        )
        raise RuntimeError(
            f"{len(shared)} e-mail address(es) belong to several accounts ({listed}). "
            "Give each account its own address in the admin (Users), or clear it on all "
            "but one, then run migrate again."
        )
    for address, [pk] in owners.items():
        users.filter(pk=pk).exclude(email=address).update(email=address)


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunPython(normalize_addresses_refusing_shared_ones, migrations.RunPython.noop),
        # SQLite and PostgreSQL alike; accounts without an address may be many.
        migrations.RunSQL(
            f"CREATE UNIQUE INDEX {INDEX} ON auth_user (LOWER(email)) WHERE email <> ''",
            f"DROP INDEX {INDEX}",
        ),
    ]
