"""A campaign's message as one customer would get it: for the editor's preview, the API's
preview and a test message to the signed-in marketer. Nothing here records a send."""

from campaigns.delivery import message_context, recommendations_for
from campaigns.models import Campaign, Promotion, PromotionCode, Variant
from campaigns.rendering import CompiledVariant


def preview_render(*, campaign: Campaign, variant: Variant, customer) -> dict:
    """Subject, HTML and text of the variant written for the customer (the promotion code they
    would get, else the shared one, else a placeholder), with what the preview shows beside."""
    promotion = Promotion.objects.filter(campaign=campaign).first()
    code = ""
    if promotion is not None:
        code = promotion.shared_code or (
            PromotionCode.objects.filter(promotion=promotion, customer=customer)
            .values_list("code", flat=True)
            .first()
            or "PREVIEW-CODE"
        )
    context = message_context(
        campaign=campaign,
        customer=customer,
        send_id=None,
        code=code,
        promotion=promotion,
        recommendations=recommendations_for([customer.pk])[customer.pk],
    )
    subject, html, text = CompiledVariant(
        subject=variant.subject, html=variant.html, text=variant.text
    ).render(context)
    return {
        "subject": subject,
        "html": html,
        "text": text,
        "customer": customer,
        "variant": variant,
        "has_promotion": promotion is not None,
        "uses_promotion": any(
            "promotion." in source for source in (variant.subject, variant.html, variant.text)
        ),
    }
