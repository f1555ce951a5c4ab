"""PostgreSQL: a committed outbox insert NOTIFYs the relay (outbox/wakeups.py).

A statement trigger, so the NOTIFY rides in the INSERT's own round trip; on
other databases nothing is created and the relay polls.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION outbox_outboxmessage_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('bookstore_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS outbox_outboxmessage_notify ON outbox_outboxmessage;
CREATE TRIGGER outbox_outboxmessage_notify
    AFTER INSERT ON outbox_outboxmessage
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_outboxmessage_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS outbox_outboxmessage_notify ON outbox_outboxmessage;
DROP FUNCTION IF EXISTS outbox_outboxmessage_notify();
"""


def _on_postgresql(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("outbox", "0002_outboxmessage_next_attempt_at")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
