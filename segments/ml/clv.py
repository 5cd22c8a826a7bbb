"""Customer-base models: BG/NBD (how many purchases, is the customer still alive) and Gamma-Gamma
(spend per purchase), fitted by maximum likelihood with numpy and scipy; lifetime value over a
horizon, discounted. Arrays in, arrays out: no database here.

Notation (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): for each customer,
x = repeat purchases (purchases after the first), t_x = days from the first to the last purchase,
T = days from the first purchase to the reference moment. While alive a customer buys at rate
lambda ~ Gamma(r, alpha); after each repeat purchase they drop out with probability
p ~ Beta(a, b). Gamma-Gamma (Fader & Hardie, "The Gamma-Gamma model of monetary value"): each
purchase's amount ~ Gamma(p, nu), nu ~ Gamma(q, gamma) per customer, independent of the
purchase process; fitted on the mean amount of each customer's n = x + 1 purchases.
"""

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special

FIT_SAMPLE = 200_000  # customers: the likelihood of a larger base is fitted on a seeded sample
MONTH_DAYS = 365.25 / 12


class FitFailed(ValueError):
    """The likelihood could not be maximised (too few or degenerate customers)."""


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float  # days
    a: float
    b: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def mean_spend(self) -> float:
        """The population's mean spend per purchase, p * gamma / (q - 1) (q > 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("nan")


def _sample(n: int, limit: int, seed: int) -> np.ndarray | slice:
    if n <= limit:
        return slice(None)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def bgnbd_log_likelihood(params, x, t_x, T, *, gradient: bool = False):
    """Each customer's log-likelihood under BG/NBD (FHL 2005, eq. 6 in logs); with `gradient`,
    also its derivatives with respect to (r, alpha, a, b), one column each."""
    r, alpha, a, b = params
    # The special functions depend on the whole number x alone: computed once per distinct x
    # (a few hundred at most) and spread over the customers, they cost nothing at a million.
    ux, at = np.unique(x, return_inverse=True)
    a1 = (special.gammaln(r + ux) - special.gammaln(r))[at] + r * np.log(alpha)
    a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + ux)
        - special.gammaln(b)
        - special.gammaln(a + b + ux)
    )[at]
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    b_x1 = np.where(repeat, b + x - 1, 1.0)
    a4 = np.where(repeat, np.log(a) - np.log(b_x1) - (r + x) * np.log(alpha + t_x), -np.inf)
    total = np.logaddexp(a3, a4)
    ll = a1 + a2 + total
    if not gradient:
        return ll
    w3, w4 = np.exp(a3 - total), np.exp(a4 - total)
    psi_ab, psi_abx = special.digamma(a + b), special.digamma(a + b + ux)[at]
    d_r = (
        special.digamma(r + ux)[at]
        - special.digamma(r)
        + np.log(alpha)
        - w3 * np.log(alpha + T)
        - w4 * np.log(alpha + t_x)
    )
    d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
    d_a = psi_ab - psi_abx + w4 / a
    d_b = psi_ab + special.digamma(b + ux)[at] - special.digamma(b) - psi_abx - w4 / b_x1
    return ll, np.column_stack([d_r, d_alpha, d_a, d_b])


def _fit(log_likelihood, start: np.ndarray, *data):
    """Maximise the mean log-likelihood over the logs of the parameters (L-BFGS-B with the
    analytic gradient), with tolerances far inside the sampling error."""

    def loss(log_params):
        params = np.exp(log_params)
        ll, grad = log_likelihood(params, *data, gradient=True)
        value = -ll.mean()
        if not np.isfinite(value):
            return 1e12, np.zeros_like(log_params)
        return value, -grad.mean(axis=0) * params

    found = optimize.minimize(
        loss,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-12, 12)] * len(start),
        options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 1000},
    )
    if not np.isfinite(found.fun) or found.fun >= 1e12:
        return None
    return np.exp(found.x)


def bgnbd_fit(x, t_x, T, *, seed: int = 0, sample: int = FIT_SAMPLE) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters."""
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    keep = _sample(len(x), sample, seed)
    x, t_x, T = x[keep], t_x[keep], T[keep]
    if len(x) < 20 or not (x > 0).any() or not (T > 0).all():
        raise FitFailed("BG/NBD: too few customers with a repeat purchase to fit the model")
    scale = float(np.median(T)) or 1.0  # times in units of the median age: better conditioned
    found = _fit(bgnbd_log_likelihood, np.zeros(4), x, t_x / scale, T / scale)
    if found is None:
        raise FitFailed("BG/NBD: the likelihood could not be maximised")
    r, alpha, a, b = found
    return BgNbd(r=float(r), alpha=float(alpha * scale), a=float(a), b=float(b))


def p_alive(model: BgNbd, x, t_x, T) -> np.ndarray:
    """P(still a customer at T | x, t_x, T) (FHL 2005, eq. 11); 1 for one-time buyers."""
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_odds = (
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-300))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
        return np.where(x > 0, special.expit(-log_odds), 1.0)


def expected_purchases(
    model: BgNbd, x, t_x, T, t, *, alive: np.ndarray | None = None
) -> np.ndarray:
    """Expected purchases in the next t days given x, t_x, T (FHL 2005, eq. 10); `alive` is
    p_alive(model, x, t_x, T) when the caller has it already."""
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    if t <= 0:
        return np.zeros_like(x)
    alive = p_alive(model, x, t_x, T) if alive is None else alive
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        head = (a + b + x - 1) / (a - 1)
        tail = 1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp
        value = head * tail * alive
    # hyp2f1 loses precision for very frequent buyers: fall back on the rate times P(alive).
    rate = (r + x) / (alpha + T)
    fallback = rate * t * alive
    bad = ~np.isfinite(value) | (value < 0)
    return np.where(bad, fallback, value)


def population_expected_purchases(model: BgNbd, t: float) -> float:
    """E[X(t)] for a customer just acquired (FHL 2005, eq. 9): the forecast of a new cohort."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    z = t / (alpha + t)
    hyp = special.hyp2f1(r, b, a + b - 1, z)
    return float((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp))


def gamma_gamma_log_likelihood(params, n, m, *, gradient: bool = False):
    """Each customer's log-likelihood of the mean m of n purchase amounts under Gamma-Gamma;
    with `gradient`, also its derivatives with respect to (p, q, gamma)."""
    p, q, g = params
    px = p * n
    log_gm = np.log(g + m * n)
    un, at = np.unique(n, return_inverse=True)  # as in BG/NBD: once per distinct count
    upx = p * un
    ll = (
        (special.gammaln(upx + q) - special.gammaln(upx))[at]
        - special.gammaln(q)
        + q * np.log(g)
        + (px - 1) * np.log(m)
        + px * np.log(n)
        - (px + q) * log_gm
    )
    if not gradient:
        return ll
    psi = special.digamma(upx + q)[at]
    d_p = n * (psi - special.digamma(upx)[at] + np.log(m) + np.log(n) - log_gm)
    d_q = psi - special.digamma(q) + np.log(g) - log_gm
    d_g = q / g - (px + q) / (g + m * n)
    return ll, np.column_stack([d_p, d_q, d_g])


def gamma_gamma_fit(n, m, *, seed: int = 0, sample: int = FIT_SAMPLE) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters from purchase counts n and mean amounts m
    (customers with a positive mean only)."""
    n, m = np.asarray(n, dtype="float64"), np.asarray(m, dtype="float64")
    usable = (n >= 1) & (m > 0) & np.isfinite(m)
    n, m = n[usable], m[usable]
    keep = _sample(len(n), sample, seed)
    n, m = n[keep], m[keep]
    if len(n) < 20:
        raise FitFailed("Gamma-Gamma: too few customers with a purchase to fit the model")
    scale = float(np.median(m)) or 1.0
    found = _fit(gamma_gamma_log_likelihood, np.log([1.0, 2.0, 1.0]), n, m / scale)
    if found is None:
        raise FitFailed("Gamma-Gamma: the likelihood could not be maximised")
    p, q, g = found
    return GammaGamma(p=float(p), q=float(q), gamma=float(g * scale))


def expected_spend(model: GammaGamma, n, m) -> np.ndarray:
    """E[spend per purchase | n purchases with mean m]: a weighted mean of the customer's own
    mean and the population's (Fader & Hardie, eq. 5); the population's for non-buyers."""
    n, m = np.asarray(n, dtype="float64"), np.asarray(m, dtype="float64")
    p, q, g = model.p, model.q, model.gamma
    own = np.where((n > 0) & np.isfinite(m) & (m > 0), m, 0.0)
    nn = np.where(own > 0, n, 0.0)
    return p * (g + own * nn) / (p * nn + q - 1)


def lifetime_value(
    bgnbd: BgNbd,
    gg: GammaGamma,
    *,
    x,
    t_x,
    T,
    n,
    m,
    horizon_days: float = 365,
    annual_discount: float = 0.1,
    step_days: float = MONTH_DAYS,
) -> tuple[np.ndarray, np.ndarray]:
    """(expected purchases, discounted value) over the horizon for every customer: the expected
    purchases of each step (a month by default) times the expected spend per purchase, each
    step discounted from its middle at `annual_discount` a year."""
    spend = expected_spend(gg, n, m)
    alive = p_alive(bgnbd, x, t_x, T)
    if annual_discount == 0:  # no discount: the steps would add up to the whole horizon's
        total = expected_purchases(bgnbd, x, t_x, T, horizon_days, alive=alive)
        return total, total * spend
    edges = np.arange(0, horizon_days + 1e-9, step_days)
    if edges[-1] < horizon_days:
        edges = np.append(edges, horizon_days)
    total = np.zeros(len(np.asarray(x)))
    value = np.zeros_like(total)
    previous = np.zeros_like(total)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        cumulative = expected_purchases(bgnbd, x, t_x, T, hi, alive=alive)
        step = np.maximum(cumulative - previous, 0)
        value += step * spend / (1 + annual_discount) ** (((lo + hi) / 2) / 365.25)
        total += step
        previous = cumulative
    return total, value
