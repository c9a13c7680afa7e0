"""Sequential tests of a canary's error rate that stay valid however often they are checked.

The controller looks every ~30 s; a fixed-sample test repeated at every look would raise false
alarms far more often than its nominal level. Both tests here are likelihood ratios that are
nonnegative (super)martingales under their null hypothesis, so by Ville's inequality the chance
they *ever* reach ``1/alpha`` is at most ``alpha``, whatever the number of looks:

* **Comparison with the champion** (Wald's SPRT on the conditional binomial). Given the errors
  seen in a batch, under H0 (equal error rates) each one is a canary error with probability
  ``q0 = n_canary / (n_canary + n_champion)``, the canary's share of the batch's requests. H1:
  the canary's rate is ``ratio`` times the champion's, ``q1 = ratio*n_c / (ratio*n_c + n_b)``.
  Each scrape adds its batch's log-likelihood ratio, with that batch's own request shares, so
  the statistic stays a martingale while the canary weight moves 5% -> 25% -> 100%. Conditioning
  on the errors makes the test free of the (unknown, shared) base error rate.
* **Absolute ceiling** (canary alone, for a champion with few or no errors): H0 ``p <= p_max``.
  The statistic is the likelihood ratio averaged over a uniform prior on ``(p_max, 1]``, which
  needs no guess of how bad a bad canary is.

Rollback is at ``log(1/alpha)`` rather than Wald's ``log((1-beta)/alpha)``: Wald's boundary
ignores overshoot (which batches of requests make larger), Ville's bound does not, and the
difference is only ``-log(1-beta)`` (0.05 nats at beta = 0.05). ``beta`` sets Wald's lower
boundary, reported as evidence that the canary is not ``ratio`` times worse.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy import special

# Reported (not decided on) when the ceiling statistic underflows: the canary is so far under
# the ceiling that the exact figure carries no information, and JSON has no -inf.
LOG_LR_FLOOR = -1000.0


@dataclass(frozen=True)
class SprtThresholds:
    """Boundaries of the comparison SPRT, in log-likelihood-ratio units.

    Attributes:
        alpha: Bound on the false-rollback probability under continuous monitoring.
        beta: Wald's type II error, which sets the lower ("not worse") boundary.
        upper: ``log(1/alpha)``: at or above it, roll back.
        lower: ``log(beta / (1 - alpha))``: at or below it, the canary is credibly not worse.
    """

    alpha: float
    beta: float
    upper: float
    lower: float


def sprt_thresholds(alpha: float = 0.01, beta: float = 0.05) -> SprtThresholds:
    """The SPRT boundaries for a false-rollback rate ``alpha`` and a miss rate ``beta``."""
    if not (0.0 < alpha < 1.0 and 0.0 < beta < 1.0):
        raise ValueError(f"alpha and beta must be in (0, 1), got {alpha}, {beta}")
    return SprtThresholds(alpha, beta, math.log(1.0 / alpha), math.log(beta / (1.0 - alpha)))


def conditional_log_lr(
    canary_errors: float,
    canary_requests: float,
    champion_errors: float,
    champion_requests: float,
    ratio: float = 2.0,
) -> float:
    """Log-likelihood ratio (H1: canary ``ratio`` times worse vs H0: equal) of one batch.

    A batch where one arm served nothing says nothing about *relative* error rates (at 100%
    weight the champion serves nothing), so it adds 0. Negative inputs are read as 0.

    Args:
        canary_errors: Canary errors in the batch.
        canary_requests: Canary requests in the batch.
        champion_errors: Champion errors in the batch.
        champion_requests: Champion requests in the batch.
        ratio: Error-rate ratio of the alternative; must be > 1.

    Returns:
        The batch's increment of the SPRT statistic (finite).
    """
    if ratio <= 1.0:
        raise ValueError(f"ratio must be > 1, got {ratio}")
    n_c, n_b = max(0.0, float(canary_requests)), max(0.0, float(champion_requests))
    x_c, x_b = max(0.0, float(canary_errors)), max(0.0, float(champion_errors))
    if n_c <= 0.0 or n_b <= 0.0 or x_c + x_b <= 0.0:
        return 0.0
    # log(q1/q0) and log((1-q1)/(1-q0)), simplified so no share is ever rounded to 0 or 1.
    log_denominator = math.log(ratio * n_c + n_b) - math.log(n_c + n_b)
    return x_c * (math.log(ratio) - log_denominator) - x_b * log_denominator


@dataclass(frozen=True)
class ErrorComparison:
    """Canary vs champion error rates and the SPRT verdict, with the evidence behind it."""

    canary_errors: float
    canary_requests: float
    champion_errors: float
    champion_requests: float
    canary_rate: float
    champion_rate: float
    log_lr: float
    upper: float
    lower: float
    breached: bool
    not_worse: bool

    def evidence(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return asdict(self)


def _rate(errors: float, requests: float) -> float:
    return min(1.0, max(0.0, errors) / requests) if requests > 0 else 0.0


def compare_error_rates(
    log_lr: float,
    canary_errors: float,
    canary_requests: float,
    champion_errors: float,
    champion_requests: float,
    thresholds: SprtThresholds,
) -> ErrorComparison:
    """The SPRT verdict for an accumulated statistic and the totals it was built from.

    Args:
        log_lr: Sum of :func:`conditional_log_lr` over all batches so far.
        canary_errors: Total canary errors.
        canary_requests: Total canary requests.
        champion_errors: Total champion errors.
        champion_requests: Total champion requests.
        thresholds: From :func:`sprt_thresholds`.

    Returns:
        Rates, statistic, boundaries and whether the upper (rollback) or lower boundary is hit.
    """
    return ErrorComparison(
        canary_errors=canary_errors,
        canary_requests=canary_requests,
        champion_errors=champion_errors,
        champion_requests=champion_requests,
        canary_rate=_rate(canary_errors, canary_requests),
        champion_rate=_rate(champion_errors, champion_requests),
        log_lr=log_lr,
        upper=thresholds.upper,
        lower=thresholds.lower,
        breached=bool(log_lr >= thresholds.upper),
        not_worse=bool(log_lr <= thresholds.lower),
    )


def ceiling_log_lr(errors: float, requests: float, max_error_rate: float) -> float:
    """Log of the mixture likelihood ratio for "error rate above ``max_error_rate``".

    ``log of the integral over p in (p0, 1] of (p/p0)^x ((1-p)/(1-p0))^(n-x) dp / (1 - p0)``,
    in closed form through the incomplete beta function. Every p > p0 in the mixture gives a
    supermartingale under any true rate <= p0, hence so does the mixture.

    Args:
        errors: Canary errors so far (clipped to [0, requests]).
        requests: Canary requests so far.
        max_error_rate: The ceiling p0, in (0, 1).

    Returns:
        The statistic, at least ``LOG_LR_FLOOR``.
    """
    if not 0.0 < max_error_rate < 1.0:
        raise ValueError(f"max_error_rate must be in (0, 1), got {max_error_rate}")
    n = max(0.0, float(requests))
    x = min(max(0.0, float(errors)), n)
    p0 = max_error_rate
    upper_mass = float(special.betaincc(x + 1.0, n - x + 1.0, p0))
    if not upper_mass > 0.0:
        return LOG_LR_FLOOR
    value = float(
        special.betaln(x + 1.0, n - x + 1.0)
        + math.log(upper_mass)
        - x * math.log(p0)
        - (n - x) * math.log1p(-p0)
        - math.log1p(-p0)
    )
    return max(LOG_LR_FLOOR, value) if math.isfinite(value) else LOG_LR_FLOOR


def clopper_pearson_lower(errors: float, requests: float, confidence: float = 0.99) -> float:
    """One-sided Clopper-Pearson lower confidence bound of an error rate (0 without errors).

    For people reading the evidence: valid for a single look only, so decisions use
    :func:`ceiling_log_lr`, not this.
    """
    n = max(0.0, float(requests))
    x = min(max(0.0, float(errors)), n)
    if x <= 0.0:
        return 0.0
    # The (1 - confidence) quantile of Beta(x, n - x + 1). betaincinv rather than
    # stats.beta.ppf: for a fraction of an error (scraped counters are floats) the ppf's beta
    # function overflows, and both return rounding noise above the true ~0 for subnormal x; a
    # lower bound never exceeds the observed rate.
    return min(float(special.betaincinv(x, n - x + 1.0, 1.0 - confidence)), x / n)


@dataclass(frozen=True)
class CeilingCheck:
    """The canary's error rate against the absolute ceiling."""

    errors: float
    requests: float
    rate: float
    max_error_rate: float
    log_lr: float
    threshold: float
    lower_bound: float
    breached: bool

    def evidence(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return asdict(self)


def check_error_ceiling(
    errors: float, requests: float, max_error_rate: float, alpha: float
) -> CeilingCheck:
    """Whether the canary's error rate is credibly above ``max_error_rate``.

    Args:
        errors: Canary errors so far.
        requests: Canary requests so far.
        max_error_rate: The ceiling.
        alpha: False-alarm bound under continuous monitoring (threshold ``log(1/alpha)``).

    Returns:
        Rate, statistic, threshold, a Clopper-Pearson lower bound (1 - alpha) and the verdict.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    log_lr = ceiling_log_lr(errors, requests, max_error_rate)
    threshold = math.log(1.0 / alpha)
    return CeilingCheck(
        errors=errors,
        requests=requests,
        rate=_rate(errors, requests),
        max_error_rate=max_error_rate,
        log_lr=log_lr,
        threshold=threshold,
        lower_bound=clopper_pearson_lower(errors, requests, 1.0 - alpha),
        breached=bool(log_lr >= threshold),
    )
