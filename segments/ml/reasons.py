"""Reasons for a customer's churn risk and expected value: chosen for every customer at once as
numbers, put into words when a person reads them.

A scoring run stores, per customer, REASON_SLOTS churn reasons then REASON_SLOTS value reasons,
each as a feature code (its place in REASON_FEATURES, -1 for an empty slot), the feature's value
and its effect on the score (churn in probability, value in currency). Words are made from those
three numbers for the one customer a page or an API answer shows, so a run over a million
customers writes numbers only. No pandas or scikit-learn here: the model imports this module.
"""

from collections.abc import Callable, Sequence

import numpy as np

REASON_SLOTS = 3  # per kind: churn, then value
# Append only: stored codes are places in this list.
REASON_FEATURES = (
    "recency",
    "frequency",
    "monetary",
    "aov",
    "tenure",
    "purchase_interval",
    "frequency_90",
    "monetary_90",
    "events_90",
    "p_alive",
    "expected_purchases",
    "expected_value",
)
# Effects smaller than these (half a point of risk, a cent of value) are not reasons.
MINIMUM_EFFECT = (0.005, 0.01)


def _plural(v: float, word: str) -> str:
    return f"{v:.0f} {word}{'s' if round(v) != 1 else ''}"


FACTS: dict[str, Callable[[float], str]] = {
    "recency": lambda v: f"last purchase {v:.0f} days ago",
    "frequency": lambda v: f"{_plural(v, 'purchase')} in total",
    "monetary": lambda v: f"spent {v:,.2f} in total",
    "aov": lambda v: f"average order {v:,.2f}",
    "tenure": lambda v: f"first purchase {v:.0f} days ago",
    "purchase_interval": lambda v: f"buys every {v:.0f} days on average",
    "frequency_90": lambda v: f"{_plural(v, 'purchase')} in the last 90 days",
    "monetary_90": lambda v: f"spent {v:,.2f} in the last 90 days",
    "events_90": lambda v: f"{_plural(v, 'interaction')} in the last 90 days",
    "p_alive": lambda v: f"{100 * v:.0f}% likely to still be a customer (BG/NBD)",
    "expected_purchases": lambda v: f"{v:.1f} purchases expected in the horizon (BG/NBD)",
    "expected_value": lambda v: f"{v:,.2f} expected spend in the horizon (BG/NBD x Gamma-Gamma)",
}


def reason_text(feature: str, value: float, effect: float, kind: str) -> str:
    """One reason in words: the fact, its direction and its size."""
    fact = FACTS.get(feature, lambda v: f"{feature} {v:.4g}")(float(value))
    fact = fact[0].upper() + fact[1:]
    direction = "raises" if effect > 0 else "lowers"
    if kind == "churn":
        return f"{fact}: {direction} the risk ({100 * effect:+.1f} points)"
    return f"{fact}: {direction} the expected value ({effect:+,.2f})"


def reasons_words(
    features: Sequence[int], values: Sequence[float], effects: Sequence[float]
) -> dict[str, list[dict]]:
    """A customer's stored reasons (codes, values, effects) as {"churn": [...], "value": [...]},
    each reason {"feature", "text", "effect"}, strongest first."""
    out: dict[str, list[dict]] = {"churn": [], "value": []}
    for slot, (code, value, effect) in enumerate(zip(features, values, effects, strict=False)):
        if code is None or code < 0 or code >= len(REASON_FEATURES):
            continue
        kind = "churn" if slot < REASON_SLOTS else "value"
        feature = REASON_FEATURES[code]
        out[kind].append(
            {
                "feature": feature,
                "text": reason_text(feature, value, effect, kind),
                "effect": round(float(effect), 4 if kind == "churn" else 2),
            }
        )
    return out


def reason_codes(
    columns: Sequence[str],
    values: np.ndarray,
    churn_c: np.ndarray,
    value_c: np.ndarray,
    top: int = REASON_SLOTS,
    minimum: tuple[float, float] = MINIMUM_EFFECT,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every row's strongest effects at once: (codes, values, effects), each rows x 2*top, the
    churn reasons first. A slot with no reason (an effect under `minimum`) has code -1."""
    codes_of = np.array([REASON_FEATURES.index(c) for c in columns], dtype=np.int16)
    n = len(values)
    rows = np.arange(n)[:, None]
    codes, vals, effs = [], [], []
    for effects, floor in ((churn_c, minimum[0]), (value_c, minimum[1])):
        order = np.argsort(-np.abs(effects), axis=1, kind="stable")[:, :top]
        eff = effects[rows, order]
        keep = np.abs(eff) >= floor
        if order.shape[1] < top:  # fewer features than slots
            pad = top - order.shape[1]
            order = np.pad(order, ((0, 0), (0, pad)))
            eff = np.pad(eff, ((0, 0), (0, pad)))
            keep = np.pad(keep, ((0, 0), (0, pad)))
        codes.append(np.where(keep, codes_of[order], -1).astype(np.int16))
        vals.append(np.where(keep, values[rows, order], 0.0))
        effs.append(np.where(keep, eff, 0.0))
    return np.hstack(codes), np.hstack(vals), np.hstack(effs)
