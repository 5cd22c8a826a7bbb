"""Campaign pages for marketers, and the public endpoints messages link to.

One module per idea; every view is imported here for campaigns/urls.py: staff (the list, a
campaign's page, report, progress and actions), wizard (the editor's steps and the preview),
tracking (the public links in messages), webhooks (mail providers' events), shared (the role
check and form errors of the staff pages). The forms are in campaigns/forms.py.
"""

from campaigns.views.staff import (
    campaign_action,
    campaign_detail,
    campaign_list,
    campaign_progress,
    campaign_report_page,
    campaigns_compare,
    promotion_code_check,
)
from campaigns.views.tracking import PIXEL, track_click, track_open, unsubscribe
from campaigns.views.webhooks import provider_events
from campaigns.views.wizard import (
    PREVIEW_FRAME_POLICY,
    PREVIEW_PICKER,
    STEPS,
    PreviewRefused,
    campaign_audience_size,
    campaign_create,
    campaign_edit,
    campaign_preview,
    campaign_preview_frame,
    campaign_test_send_view,
    preview_render,
)

__all__ = [
    "promotion_code_check",
    "campaign_list",
    "campaigns_compare",
    "campaign_detail",
    "campaign_report_page",
    "campaign_progress",
    "campaign_action",
    "STEPS",
    "campaign_create",
    "campaign_edit",
    "PREVIEW_PICKER",
    "campaign_audience_size",
    "PreviewRefused",
    "campaign_preview",
    "PREVIEW_FRAME_POLICY",
    "campaign_preview_frame",
    "campaign_test_send_view",
    "preview_render",
    "PIXEL",
    "unsubscribe",
    "track_open",
    "track_click",
    "provider_events",
]
