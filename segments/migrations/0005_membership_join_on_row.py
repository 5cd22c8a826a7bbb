"""A current member's join lives on its membership row; the change log keeps ended stays.

Existing data: each membership takes the run of the logged join that made it (same segment,
customer and time), and that join leaves the log, so no join is counted twice.
"""

import django.db.models.deletion
from django.db import migrations, models

JOIN_TO_ROW = """
    UPDATE segments_membership SET run_id = (
        SELECT c.run_id FROM segments_membershipchange c
        WHERE c.segment_id = segments_membership.segment_id
          AND c.customer_id = segments_membership.customer_id
          AND c.change = 'joined' AND c.at = segments_membership.since
        ORDER BY c.id DESC LIMIT 1
    )
"""
JOIN_OFF_LOG = """
    DELETE FROM segments_membershipchange WHERE change = 'joined' AND EXISTS (
        SELECT 1 FROM segments_membership m
        WHERE m.segment_id = segments_membershipchange.segment_id
          AND m.customer_id = segments_membershipchange.customer_id
          AND m.since = segments_membershipchange.at
    )
"""
JOIN_BACK_TO_LOG = """
    INSERT INTO segments_membershipchange (segment_id, customer_id, run_id, change, at)
    SELECT segment_id, customer_id, run_id, 'joined', since FROM segments_membership
    WHERE run_id IS NOT NULL
"""


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0004_ml_schedule"),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="run",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="segments.refreshrun",
            ),
        ),
        migrations.AlterField(
            model_name="membershipchange",
            name="run",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="changes",
                to="segments.refreshrun",
            ),
        ),
        migrations.RunSQL(JOIN_TO_ROW, reverse_sql=JOIN_BACK_TO_LOG),
        migrations.RunSQL(JOIN_OFF_LOG, reverse_sql=migrations.RunSQL.noop),
    ]
