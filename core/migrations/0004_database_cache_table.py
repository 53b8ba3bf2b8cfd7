"""The table of the database cache (the default cache when CACHE_URL is not set), so that
`migrate` alone prepares a database. `createcachetable` does nothing for a table that exists or
a cache that is not in the database; run it again after switching CACHE_URL off later."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0003_api_token_expiry"),
    ]

    operations = [
        migrations.RunPython(create_cache_table, migrations.RunPython.noop, elidable=True),
    ]
