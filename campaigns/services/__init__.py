"""Every write to campaigns: definition, launch, pause, resume, cancel, stop, triggered sends.

Errors are django ValidationErrors keyed by the field they concern, so the API and the pages show
them next to the right input.

One module per idea; every public name is imported here, so callers import from
`campaigns.services`:

- access: who may change campaigns, and which can still be changed;
- definition: create, change and delete a draft, its webhook secret, what stops a launch;
- variants: the message variants (A/B);
- promotions: the promotion and its codes;
- estimate: the live audience estimate of unsaved settings;
- lifecycle: launch (the audience snapshot), pause, resume, cancel, stop, the unknown sends
  sent again, scheduled starts;
- dispatch: pending send rows become delivery tasks; a broadcast with nothing left is done;
- triggers: new joins of a triggered campaign's segments become sends;
- sweeps: rows a dead worker left claimed or handing over; an erased person's rows;
- test_sends: a test message to the marketer's own address, not a send of the campaign.
"""

from campaigns.services.definition import (
    campaign_create,
    campaign_delete,
    campaign_problems,
    campaign_update,
    campaign_warnings,
    campaign_webhook_secret_rotate,
    webhook_secret_new,
)
from campaigns.services.dispatch import (
    campaign_dispatch,
    campaign_dispatch_queue,
    campaign_finish_if_done,
)
from campaigns.services.estimate import ESTIMATE_FIELDS, campaign_audience_estimate
from campaigns.services.lifecycle import (
    campaign_cancel,
    campaign_launch,
    campaign_pause,
    campaign_resend_unknown,
    campaign_resume,
    campaign_snapshot,
    campaign_stop,
    campaigns_start_scheduled,
)
from campaigns.services.promotions import (
    CODE_ALPHABET,
    CODE_LENGTH,
    promotion_code_new,
    promotion_codes_create,
    promotion_remove,
    promotion_set,
)
from campaigns.services.sweeps import sends_cancel_for_customer, sends_sweep
from campaigns.services.test_sends import campaign_test_send
from campaigns.services.triggers import campaign_trigger, campaigns_trigger_due
from campaigns.services.variants import variant_create, variant_delete, variant_update

__all__ = [
    "campaign_test_send",
    "webhook_secret_new",
    "campaign_webhook_secret_rotate",
    "campaign_create",
    "campaign_update",
    "campaign_delete",
    "campaign_problems",
    "campaign_warnings",
    "variant_create",
    "variant_update",
    "variant_delete",
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "promotion_set",
    "promotion_remove",
    "promotion_code_new",
    "promotion_codes_create",
    "ESTIMATE_FIELDS",
    "campaign_audience_estimate",
    "campaign_snapshot",
    "campaign_launch",
    "campaign_pause",
    "campaign_resume",
    "campaign_cancel",
    "campaign_stop",
    "campaign_resend_unknown",
    "campaigns_start_scheduled",
    "campaign_dispatch_queue",
    "campaign_dispatch",
    "campaign_finish_if_done",
    "campaign_trigger",
    "campaigns_trigger_due",
    "sends_sweep",
    "sends_cancel_for_customer",
]
