"""Proof that the DeLong intervals and the promotion gate behave as claimed.

Scores are binormal: negatives ~ N(0, 1), positives ~ N(mu, 1), so the true AUC is
Phi(mu / sqrt(2)). A second model on the same rows shares a standard-normal component with the
first, so the two models' scores correlate with ``rho`` within each class. The gate is the
platform's rule (``Evaluation.beats_champion``): promote when the lower bound of the paired 95%
CI of AUC(challenger) - AUC(champion) is above ``min_delta``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from mlplatform.ml.diagnostics import (
    minimum_detectable_delta,
)
from mlplatform.ml.evaluation import evaluate_on_holdout
from mlplatform.ml.metrics import (
    auc_with_ci,
    paired_auc_difference,
)

PREVALENCE = 0.25


def mu_for(auc: float) -> float:
    """Binormal separation giving a true AUC of ``auc``."""
    return float(np.sqrt(2.0) * stats.norm.ppf(auc))


def paired_holdout(rng, rows: int, auc_a: float, auc_b: float, rho: float):
    """Labels and two models' scores with true AUCs auc_a, auc_b and score correlation rho."""
    y = rng.random(rows) < PREVALENCE
    shared, own = rng.standard_normal(rows), rng.standard_normal(rows)
    a = shared + mu_for(auc_a) * y
    b = rho * shared + np.sqrt(1.0 - rho**2) * own + mu_for(auc_b) * y
    return y, a, b


def promotion_rates(seed, sims, rows, auc_a, auc_b, rho, min_deltas):
    """Share of simulated holdouts on which the gate promotes, per min_delta, and the mean SE."""
    rng = np.random.default_rng(seed)
    diffs = [
        paired_auc_difference(*paired_holdout(rng, rows, auc_a, auc_b, rho)) for _ in range(sims)
    ]
    lows = np.array([d.low for d in diffs])
    rates = {m: float(np.mean(lows > m)) for m in min_deltas}
    return rates, float(np.mean([d.se for d in diffs]))


def mc_se(rate: float, sims: int) -> float:
    """Monte Carlo standard error of a simulated rate."""
    return float(np.sqrt(rate * (1.0 - rate) / sims))


# --- exactness against the O(n^2) definition ----------------------------------------------------


def reference_delong(labels, scores):
    """DeLong et al. (1988) written out with the full m x n comparison matrix."""
    scores = np.atleast_2d(scores)
    pos, neg = scores[:, labels], scores[:, ~labels]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    cov = np.atleast_2d(np.cov(v10)) / pos.shape[1] + np.atleast_2d(np.cov(v01)) / neg.shape[1]
    return psi.mean(axis=(1, 2)), cov


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tied", [True, False])
def test_auc_variance_and_paired_se_equal_the_quadratic_reference(seed, tied):
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(8, 120))
    labels = np.zeros(rows, bool)
    labels[rng.choice(rows, int(rng.integers(2, rows - 1)), replace=False)] = True
    scores = rng.integers(0, 5, (2, rows)) if tied else rng.normal(size=(2, rows))
    scores = scores + labels * rng.uniform(0, 2)
    aucs, cov = reference_delong(labels, scores)
    for i in range(2):
        estimate = auc_with_ci(labels, scores[i])
        assert estimate.auc == pytest.approx(aucs[i], abs=1e-12)
        assert estimate.se == pytest.approx(np.sqrt(cov[i, i]), rel=1e-12, abs=1e-15)
    difference = paired_auc_difference(labels, scores[0], scores[1])
    assert difference.delta == pytest.approx(aucs[0] - aucs[1], abs=1e-12)
    se = np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0))
    assert difference.se == pytest.approx(se, rel=1e-9, abs=1e-12)


def test_auc_equals_roc_auc_score_on_a_large_heavily_tied_holdout():
    rng = np.random.default_rng(11)
    y = rng.random(200_000) < PREVALENCE
    for decimals in (0, 1, 3):
        scores = np.round(rng.normal(size=len(y)) + y, decimals)
        assert abs(auc_with_ci(y, scores).auc - roc_auc_score(y, scores)) <= 1e-12


# --- agreement with the bootstrap ---------------------------------------------------------------


def bootstrap_deltas(rng, y, a, b, resamples):
    """Stratified paired bootstrap of AUC(a) - AUC(b), vectorised as per-row resample counts."""
    rows = len(y)
    counts = np.zeros((resamples, rows))
    for members in (np.flatnonzero(y), np.flatnonzero(~y)):
        draws = members[rng.integers(0, len(members), (resamples, len(members)))]
        flat = (draws + rows * np.arange(resamples)[:, None]).ravel()
        counts += np.bincount(flat, minlength=resamples * rows).reshape(resamples, rows)
    m, n = y.sum(), (~y).sum()
    aucs = []
    for scores in (a, b):
        # Continuous scores have no ties: a positive beats the (weighted) negatives below it.
        order = np.argsort(scores)
        w, positive = counts[:, order], y[order]
        negatives_below = np.cumsum(w * ~positive, axis=1)
        aucs.append((w * positive * negatives_below).sum(axis=1) / (m * n))
    return aucs[0] - aucs[1]


def test_paired_ci_width_agrees_with_a_2000_resample_paired_bootstrap_within_10_percent():
    rng = np.random.default_rng(5)
    y, a, b = paired_holdout(rng, 2_000, 0.82, 0.80, rho=0.8)
    deltong = paired_auc_difference(y, a, b)
    deltas = bootstrap_deltas(rng, y, a, b, 2_000)
    low, high = np.percentile(deltas, [2.5, 97.5])
    assert (high - low) / (deltong.high - deltong.low) == pytest.approx(1.0, abs=0.10)
    assert np.mean(deltas) == pytest.approx(deltong.delta, abs=0.1 * (high - low))


# --- the gate under simulation ------------------------------------------------------------------


def test_gate_promotes_equally_good_models_at_most_5_percent_of_the_time():
    """2,000 holdouts of 5,000 rows, both models AUC 0.80, score correlation 0.85.

    With min_delta = 0 the gate is a one-sided test at 2.5%; the bound allows 5% plus three
    Monte Carlo standard errors (0.015). A positive min_delta can only promote less often.
    """
    sims = 2_000
    rates, _ = promotion_rates(21, sims, 5_000, 0.80, 0.80, 0.85, (0.0, 0.005))
    assert rates[0.0] <= 0.05 + 3 * mc_se(0.05, sims)
    # Sharper: a correct SE gives the nominal one-sided 2.5%; an SE off by a quarter would not.
    assert rates[0.0] == pytest.approx(0.025, abs=3 * mc_se(0.025, sims))
    assert rates[0.005] <= rates[0.0]
    assert rates[0.005] <= 0.01


def test_gate_promotes_a_true_improvement_of_002_on_20000_rows_at_least_80_percent():
    """500 holdouts of 20,000 rows (25% positives): AUC 0.82 vs 0.80, min_delta = 0.005.

    The two models' scores correlate with 0.85 within each class (retrained models on the same
    features; the AUC estimates then correlate more still), giving se_diff ~ 0.002, far below
    the 0.0054 that 80% power needs. Even at a score correlation of 0.5 power is ~98%.
    """
    sims = 500
    rates, se = promotion_rates(22, sims, 20_000, 0.82, 0.80, 0.85, (0.005,))
    assert rates[0.005] >= 0.80
    assert se < 0.015 / (stats.norm.ppf(0.975) + stats.norm.ppf(0.8))


def test_minimum_detectable_delta_gives_80_percent_power_in_simulation():
    """At true delta = min_delta + MDD(se) the gate promotes 80% of the time.

    se comes from 50 pilot holdouts at delta 0 (it barely changes with delta); the tolerance is
    3 Monte Carlo SEs of 500 simulations (0.054) plus 0.02 for the pilot's estimate of se.
    """
    sims = 500
    _, se = promotion_rates(23, 50, 20_000, 0.80, 0.80, 0.85, ())
    target = 0.80 + 0.005 + minimum_detectable_delta(se)
    rates, _ = promotion_rates(24, sims, 20_000, target, 0.80, 0.85, (0.005,))
    assert rates[0.005] == pytest.approx(0.80, abs=3 * mc_se(0.8, sims) + 0.02)


def test_gate_rule_matches_the_evaluation_decision():
    rng = np.random.default_rng(3)
    y, a, b = paired_holdout(rng, 20_000, 0.82, 0.80, 0.85)
    evaluation = evaluate_on_holdout(
        y,
        a,
        b,
        model_name="m",
        challenger_version="2",
        champion_version="1",
        holdout_version="h",
        min_auc=0.7,
        min_delta=0.005,
    )
    assert evaluation.beats_champion == (paired_auc_difference(y, a, b).low > 0.005)


def test_95_percent_auc_interval_covers_the_true_auc_95_plus_minus_2_percent():
    """4,000 holdouts of 1,000 rows (25% positives), true AUC 0.80.

    The Monte Carlo SE of the coverage is sqrt(0.95 * 0.05 / 4000) = 0.0034, so the +/- 2% band
    is 5.8 MC SEs wide on each side: a correct interval fails it with probability < 1e-8, and
    an interval covering 92% or 98% of the time fails it with probability ~ 1/2 or more.
    """
    sims, rows, true_auc = 4_000, 1_000, 0.80
    rng = np.random.default_rng(31)
    y = rng.random((sims, rows)) < PREVALENCE
    scores = rng.standard_normal((sims, rows)) + mu_for(true_auc) * y
    covered = 0
    for i in range(sims):
        estimate = auc_with_ci(y[i], scores[i])
        covered += estimate.low <= true_auc <= estimate.high
    coverage = covered / sims
    assert 0.02 >= 5 * mc_se(0.95, sims)
    assert coverage == pytest.approx(0.95, abs=0.02)
