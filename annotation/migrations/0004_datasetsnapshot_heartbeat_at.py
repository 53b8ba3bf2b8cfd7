from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0003_dataset_snapshots'),
    ]

    operations = [
        migrations.AddField(
            model_name='datasetsnapshot',
            name='heartbeat_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
