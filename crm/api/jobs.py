"""The state of a background job, as every job endpoint answers it."""

from rest_framework import serializers

from crm.jobs import JOB_STATES


class JobStateFields(serializers.Serializer):
    """`state` and `state_reason` beside a job's own fields (see crm/jobs.py)."""

    state = serializers.ChoiceField(
        choices=JOB_STATES,
        source="job_state",
        read_only=True,
        help_text="queued, running, done, failed, or stuck: queued or running for too long.",
    )
    state_reason = serializers.CharField(
        source="job_state_reason",
        read_only=True,
        help_text="What to check when stuck; the reason when failed.",
    )

    STATE_FIELDS = ["state", "state_reason"]
