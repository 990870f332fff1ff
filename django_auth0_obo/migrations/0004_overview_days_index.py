from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_auth0_obo", "0003_overview_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="delegationevent",
            index=models.Index(
                fields=["created_at", "outcome", "kind", "cache_hit", "count"],
                name="auth0obo_evt_ovw_days",
            ),
        ),
    ]
