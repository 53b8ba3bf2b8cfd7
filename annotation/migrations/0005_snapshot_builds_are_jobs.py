import django.utils.timezone
from django.db import migrations, models


def backfill(apps, schema_editor):
    """Existing snapshots: their build's message went out when they were created; a build that
    started was taken once (a building one at its last sign of life, at the latest); the rows
    written so far are its progress."""
    DatasetSnapshot = apps.get_model("annotation", "DatasetSnapshot")
    DatasetSnapshot.objects.update(enqueued_at=models.F("created_at"))
    DatasetSnapshot.objects.exclude(status="pending").update(attempts=1)
    DatasetSnapshot.objects.filter(status="building").update(
        started_at=models.F("heartbeat_at")
    )
    for snapshot in DatasetSnapshot.objects.exclude(status="pending").only("row_count"):
        snapshot.progress = {"done": snapshot.row_count, "unit": "rows"}
        snapshot.save(update_fields=["progress"])


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0004_datasetsnapshot_heartbeat_at"),
    ]

    operations = [
        # The build's end is the job's finished_at.
        migrations.RenameField(
            model_name="datasetsnapshot",
            old_name="built_at",
            new_name="finished_at",
        ),
        migrations.AlterField(
            model_name="datasetsnapshot",
            name="finished_at",
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name="datasetsnapshot",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0, help_text="Times a worker took it."),
        ),
        migrations.AddField(
            model_name="datasetsnapshot",
            name="enqueued_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now, help_text="When its message was last published."
            ),
        ),
        migrations.AddField(
            model_name="datasetsnapshot",
            name="started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="datasetsnapshot",
            name="progress",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
