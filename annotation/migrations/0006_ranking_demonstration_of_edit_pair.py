import django.db.models.deletion
from django.db import migrations, models


def link_edit_pairs(apps, schema_editor):
    """An edit pair was written in the same transaction as its demonstration, by the same
    annotator on the same prompt, with the same timestamp: that is how existing pairs find it."""
    Ranking = apps.get_model("annotation", "Ranking")
    Demonstration = apps.get_model("annotation", "Demonstration")
    pairs = Ranking.objects.filter(origin="edit", demonstration__isnull=True)
    for pair in pairs.only("id", "annotator_id", "prompt_id", "created_at").iterator():
        demonstration = (
            Demonstration.objects.filter(
                annotator_id=pair.annotator_id,
                prompt_id=pair.prompt_id,
                created_at=pair.created_at,
                edited_from__isnull=False,
            )
            .order_by("id")
            .first()
        )
        if demonstration is not None:
            Ranking.objects.filter(pk=pair.pk).update(demonstration=demonstration)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0005_snapshot_builds_are_jobs"),
    ]

    operations = [
        migrations.AddField(
            model_name="ranking",
            name="demonstration",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="edit_rankings",
                to="annotation.demonstration",
            ),
        ),
        migrations.RunPython(link_edit_pairs, migrations.RunPython.noop),
    ]
