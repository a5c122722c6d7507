r"""Finite normal mixtures on the log-HR scale: the prior algebra of meta-analytic-predictive (MAP) priors.

This is the numpy/scipy counterpart of the normal-mixture part of RBesT (Weber, Li, Seaman, Kakizume &
Schmidli, "Applying Meta-Analytic-Predictive Priors with the R Bayesian Evidence Synthesis Tools",
*J Stat Softw* 2021;100(19); source Novartis/RBesT ``R/mixnorm.R``, ``R/postmix.R``, ``R/mixdiff.R``,
``R/robustify.R``, ``R/automixfit.R``, ``R/mixess.R``).  It must stay free of PyMC, pytensor and ArviZ:
probability-of-success calculations (``harmoni_bayes.design``) run on this fast path.

A mixture is ``p(theta) = sum_k w_k N(theta; m_k, s_k^2)`` with ``w_k >= 0``, ``sum_k w_k = 1`` and
``s_k > 0``.  Everything a MAP prior needs stays inside the family:

* :func:`posterior` (conjugate update with one normal estimate), :func:`predictive` (the estimate's
  prior predictive) and :func:`difference` (``A - B``) are closed-form mixtures;
* :func:`robustify` adds a vague component (Schmidli et al. 2014);
* :func:`fit_mixture` compresses draws (MCMC output, or the many-component grid mixture of
  :func:`harmoni_bayes.exact.nnhm_exact`) into a few components by EM, as RBesT ``automixfit`` does;
* :func:`ess` gives the prior effective sample size by the moment, Morita and ELIR methods.

**Unit information for log HR.**  With ``D`` events and allocation 1:1 the log-HR estimate has variance
``4/D`` (Schoenfeld 1981), i.e. one event carries the information of one observation with sampling sd
``sigma = 2``.  With that reference scale a normal prior ``N(m, s^2)`` is "worth" ``sigma^2/s^2 = 4/s^2``
events, a unit-information component is ``N(m, 2^2)`` (one event), and every ESS below is a number of
events.  For allocation ``r:1`` the per-event sd is ``(1 + r)/sqrt(r)`` (Var = ``(1+r)^2/(r D)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import special

from harmoni_bayes.errors import ModelError, Problem

__all__ = [
    "LOG_HR_UNIT_SD",
    "MIN_COMPONENT_DRAWS",
    "EMFit",
    "NormalMix",
    "as_normal_mix",
    "difference",
    "em_fit",
    "ess",
    "fit_mixture",
    "posterior",
    "predictive",
    "robustify",
    "unit_information_sd",
]

LOG_HR_UNIT_SD = 2.0
"""Unit-information sd for a log HR with 1:1 allocation: ``Var(log HR_hat) = 4/D``, so one event = ``N(., 2^2)``."""

WEIGHT_TOL = 1e-6
"""Mixture weights must sum to 1 within this tolerance (then they are renormalised exactly)."""

_LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------- helpers


def _float_array(name: str, x, problems: list[Problem]) -> np.ndarray | None:
    try:
        arr = np.atleast_1d(np.asarray(x, dtype=float))
    except (TypeError, ValueError):
        problems.append(Problem(f"{name} must be numbers", value=repr(x)))
        return None
    if arr.ndim != 1:
        problems.append(Problem(f"{name} must be one-dimensional, got shape {arr.shape}"))
        return None
    return arr


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float, copy=True)
    a.flags.writeable = False
    return a


def _scalar(name: str, x, problems: list[Problem], *, positive: bool = False) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        problems.append(Problem(f"{name} must be a number", value=repr(x)))
        return math.nan
    if isinstance(x, bool) or not math.isfinite(v) or (positive and not v > 0):
        problems.append(Problem(f"{name} must be {'positive and ' if positive else ''}finite", value=repr(x)))
    return v


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# ----------------------------------------------------------------------------- NormalMix


@dataclass(frozen=True, eq=False)
class NormalMix:
    r"""A finite normal mixture ``p(x) = sum_k w_k N(x; m_k, s_k^2)`` (log-HR scale).

    Parameters
    ----------
    weights : array_like
        ``w_k >= 0`` summing to 1 within :data:`WEIGHT_TOL` (``1e-6``); they are then renormalised
        exactly.  Zero weights are allowed (for example a robust component with weight 0).
    means : array_like
        Component means ``m_k`` (finite).
    sds : array_like
        Component standard deviations ``s_k > 0``.

    Raises
    ------
    ModelError
        Listing every problem at once (lengths, non-finite values, negative weights, weights not summing
        to 1, non-positive sds).

    Notes
    -----
    * ``E[X] = sum_k w_k m_k``; ``Var[X] = sum_k w_k (s_k^2 + m_k^2) - E[X]^2``;
    * ``F(x) = sum_k w_k Phi((x - m_k)/s_k)``; ``log p(x) = logsumexp_k [log w_k + log N(x; m_k, s_k^2)]``;
    * ``ppf`` inverts ``F`` by bisection inside the bracket ``[min_k q_k, max_k q_k]`` with
      ``q_k = m_k + s_k Phi^{-1}(q)``: at the smallest component quantile every component cdf is
      ``<= q``, so ``F <= q``, and symmetrically at the largest.
    """

    weights: np.ndarray
    means: np.ndarray
    sds: np.ndarray
    _logw: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        w = _float_array("weights", self.weights, problems)
        m = _float_array("means", self.means, problems)
        s = _float_array("sds", self.sds, problems)
        if w is not None and m is not None and s is not None:
            if not (w.size == m.size == s.size):
                problems.append(
                    Problem(f"weights, means and sds must have the same length, got {w.size}, {m.size}, {s.size}")
                )
            elif w.size == 0:
                problems.append(Problem("a mixture needs at least one component"))
        if w is not None and w.size:
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                problems.append(Problem("weights must be finite and non-negative", value=str(w.tolist())))
            elif abs(w.sum() - 1.0) > WEIGHT_TOL:
                problems.append(
                    Problem(f"weights must sum to 1 (within {WEIGHT_TOL:g}), got {w.sum():.9g}", value=str(w.tolist()))
                )
        if m is not None and not np.all(np.isfinite(m)):
            problems.append(Problem("means must be finite", value=str(m.tolist())))
        if s is not None and (not np.all(np.isfinite(s)) or np.any(s <= 0)):
            problems.append(Problem("sds must be positive and finite", value=str(s.tolist())))
        if problems or w is None or m is None or s is None:
            raise ModelError("invalid normal mixture", problems)
        object.__setattr__(self, "weights", _readonly(w / w.sum()))
        object.__setattr__(self, "means", _readonly(m))
        object.__setattr__(self, "sds", _readonly(s))
        with np.errstate(divide="ignore"):  # log 0 = -inf is wanted for zero-weight components
            object.__setattr__(self, "_logw", np.log(self.weights))

    # constructors ------------------------------------------------------------------------
    @classmethod
    def single(cls, mean: float, sd: float) -> NormalMix:
        """The one-component mixture ``N(mean, sd^2)``."""
        return cls(np.ones(1), np.array([mean], dtype=float), np.array([sd], dtype=float))

    @classmethod
    def from_mixture(cls, mix) -> NormalMix:
        """Convert any object with ``weights``, ``means`` and ``sds`` (for example the grid mixture
        :class:`harmoni_bayes.exact.NormalMixture` returned as ``nnhm_exact(...).theta_new``).

        Zero-weight components are dropped; a component with positive weight and ``sd = 0`` (a point
        mass) has no density and raises :class:`ModelError`.
        """
        w = np.asarray(mix.weights, dtype=float)
        keep = w > 0
        return cls(w[keep] / w[keep].sum(), np.asarray(mix.means, dtype=float)[keep], np.asarray(mix.sds)[keep])

    # basics ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.weights.size)

    def __repr__(self) -> str:
        comps = ", ".join(
            f"({w:.4g}, {m:.4g}, {s:.4g})" for w, m, s in zip(self.weights, self.means, self.sds, strict=True)
        )
        return f"NormalMix[(w, mean, sd): {comps}]"

    def mean(self) -> float:
        """``E[X] = sum_k w_k m_k``."""
        return float(np.dot(self.weights, self.means))

    def var(self) -> float:
        """``Var[X] = sum_k w_k (s_k^2 + (m_k - E[X])^2)`` (centred form, no cancellation)."""
        mu = self.mean()
        return float(np.dot(self.weights, self.sds**2 + (self.means - mu) ** 2))

    def sd(self) -> float:
        """``sqrt(Var[X])``."""
        return math.sqrt(self.var())

    # densities ---------------------------------------------------------------------------
    def _component_logpdf(self, x: np.ndarray) -> np.ndarray:
        """``log w_k + log N(x; m_k, s_k^2)`` with shape ``x.shape + (K,)``."""
        z = (x[..., None] - self.means) / self.sds
        return self._logw - 0.5 * z * z - np.log(self.sds) - 0.5 * _LOG_2PI

    @staticmethod
    def _out(x, arr: np.ndarray):
        return float(arr) if np.ndim(x) == 0 else arr

    def logpdf(self, x) -> np.ndarray | float:
        """``log p(x) = logsumexp_k [log w_k - (x - m_k)^2 / (2 s_k^2) - log s_k - log(2 pi)/2]``."""
        xa = np.asarray(x, dtype=float)
        return self._out(x, special.logsumexp(self._component_logpdf(xa), axis=-1))

    def pdf(self, x) -> np.ndarray | float:
        """``p(x) = sum_k w_k phi((x - m_k)/s_k) / s_k``."""
        return self._out(x, np.exp(np.asarray(self.logpdf(np.asarray(x, dtype=float)))))

    def cdf(self, x) -> np.ndarray | float:
        """``F(x) = sum_k w_k Phi((x - m_k)/s_k)``."""
        xa = np.asarray(x, dtype=float)
        return self._out(x, special.ndtr((xa[..., None] - self.means) / self.sds) @ self.weights)

    def sf(self, x) -> np.ndarray | float:
        """``1 - F(x) = sum_k w_k Phi((m_k - x)/s_k)``, accurate in the upper tail."""
        xa = np.asarray(x, dtype=float)
        return self._out(x, special.ndtr((self.means - xa[..., None]) / self.sds) @ self.weights)

    def ppf(self, q) -> np.ndarray | float:
        """Quantile ``F^{-1}(q)`` by vectorised bisection (see the class notes for the bracket).

        ``q = 0`` and ``q = 1`` give ``-inf`` and ``+inf``; ``q`` outside ``[0, 1]`` gives ``nan``.  For
        ``q > 1/2`` the upper tail ``sf(x) = 1 - q`` is solved instead, so extreme upper quantiles keep
        their precision.
        """
        qa = np.asarray(q, dtype=float)
        flat = qa.ravel()
        out = np.full(flat.shape, np.nan)
        out[flat == 0.0] = -np.inf
        out[flat == 1.0] = np.inf
        inner = (flat > 0.0) & (flat < 1.0)
        if inner.any():
            qi = flat[inner]
            comp_q = self.means + self.sds * special.ndtri(qi)[:, None]
            lo, hi = comp_q.min(axis=1), comp_q.max(axis=1)
            upper = qi > 0.5
            for _ in range(200):  # each halving gains one bit; the bracket is at most a few sds wide
                mid = 0.5 * (lo + hi)
                below = np.where(upper, self.sf(mid) > 1.0 - qi, self.cdf(mid) < qi)
                lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
                if np.all(hi - lo <= 4.0 * np.finfo(float).eps * np.maximum(1.0, np.abs(mid))):
                    break
            out[inner] = 0.5 * (lo + hi)
        return self._out(q, out.reshape(qa.shape))

    def sample(self, n: int, rng: int | np.random.Generator | None = None) -> np.ndarray:
        """``n`` independent draws: a component index ``k ~ Categorical(w)``, then ``N(m_k, s_k^2)``."""
        gen = _rng(rng)
        k = gen.choice(len(self), size=int(n), p=self.weights)
        return gen.normal(self.means[k], self.sds[k])

    # local information -------------------------------------------------------------------
    def _responsibilities(self, x: np.ndarray) -> np.ndarray:
        lp = self._component_logpdf(x)
        return np.exp(lp - special.logsumexp(lp, axis=-1, keepdims=True))

    def score(self, x) -> np.ndarray | float:
        """``d/dx log p(x) = sum_k r_k(x) g_k(x)`` with ``g_k = -(x - m_k)/s_k^2`` and
        responsibilities ``r_k(x) = w_k N(x; m_k, s_k^2) / p(x)``.
        """
        xa = np.asarray(x, dtype=float)
        g = -(xa[..., None] - self.means) / self.sds**2
        return self._out(x, np.sum(self._responsibilities(xa) * g, axis=-1))

    def information(self, x) -> np.ndarray | float:
        r"""Local information ``i(x) = -d^2/dx^2 log p(x)``.

        With ``p'' / p = sum_k r_k (g_k^2 - 1/s_k^2)`` and ``(log p)'' = p''/p - (p'/p)^2``:
        ``i(x) = sum_k r_k / s_k^2 - Var_r(g)``, where ``Var_r(g) = sum_k r_k (g_k - gbar)^2`` is
        computed in centred form (it is what RBesT ``mixInfo`` computes as ``gsum - hsum``).  For one
        component ``i(x) = 1/s^2``; between the modes of a bimodal mixture ``i(x)`` is negative.
        """
        xa = np.asarray(x, dtype=float)
        r = self._responsibilities(xa)
        g = -(xa[..., None] - self.means) / self.sds**2
        gbar = np.sum(r * g, axis=-1, keepdims=True)
        return self._out(x, np.sum(r / self.sds**2, axis=-1) - np.sum(r * (g - gbar) ** 2, axis=-1))

    def mode(self) -> float:
        r"""Global mode of the density.

        Every local mode ``x*`` solves ``x = sum_k r_k(x) m_k / s_k^2 / sum_k r_k(x) / s_k^2`` (the
        stationarity condition ``p'(x) = 0`` rearranged).  This fixed-point ("mean-shift") iteration is
        run from every component mean (Carreira-Perpinan 2000, *IEEE TPAMI* 22:1318, who shows it
        ascends the density; from the 50 means of highest density when there are more components),
        polished by Newton steps on ``log p``, and the highest end point is returned.  RBesT evaluates
        the Morita ESS at this mode (``mixmode``).
        """
        x = self.means.copy()
        if x.size > 50:  # a grid mixture has thousands of components; its mode is near a high-density mean
            x = x[np.argsort(np.asarray(self.logpdf(x)))[-50:]]
        prec = 1.0 / self.sds**2
        for _ in range(2000):
            r = self._responsibilities(x)
            x_new = (r * prec) @ self.means / (r @ prec)
            done = np.all(np.abs(x_new - x) <= 1e-13 * np.maximum(1.0, np.abs(x)))
            x = x_new
            if done:
                break
        for _ in range(5):  # Newton on log p where it is locally concave (it is at a maximum)
            info = np.asarray(self.information(x))
            step = np.where(info > 0, np.asarray(self.score(x)) / np.where(info > 0, info, 1.0), 0.0)
            x = x + step
        return float(x[np.argmax(self.logpdf(x))])


# ----------------------------------------------------------------------------- algebra


def posterior(mix: NormalMix, y: float, se: float) -> NormalMix:
    r"""Conjugate update of a normal-mixture prior with one normal estimate ``y ~ N(theta, se^2)``.

    Parameters
    ----------
    mix : NormalMix
        Prior ``sum_k w_k N(m_k, s_k^2)`` for ``theta`` (log HR).
    y, se : float
        The estimate and its standard error (``se > 0``).

    Returns
    -------
    NormalMix
        ``sum_k w_k' N(m_k', s_k'^2)`` with, component by component,

        * ``1/s_k'^2 = 1/s_k^2 + 1/se^2`` and ``m_k' = s_k'^2 (m_k/s_k^2 + y/se^2)``;
        * ``w_k' ∝ w_k N(y; m_k, s_k^2 + se^2)`` (each component's marginal likelihood of ``y``).

    Notes
    -----
    RBesT ``postmix`` for normal mixtures (Weber et al. 2021, section 2; Schmidli et al. 2014).  The
    weights are normalised on the log scale, so a prior-data conflict that sends a component's weight
    below ``1e-300`` gives it weight 0 rather than an overflow.
    """
    problems: list[Problem] = []
    yv = _scalar("y", y, problems)
    sev = _scalar("se", se, problems, positive=True)
    if problems:
        raise ModelError("cannot update the mixture", problems)
    s2, e2 = mix.sds**2, sev**2
    post_var = s2 * e2 / (s2 + e2)
    post_mean = post_var * (mix.means / s2 + yv / e2)
    tot = s2 + e2
    logw = mix._logw - 0.5 * (yv - mix.means) ** 2 / tot - 0.5 * np.log(tot)
    w = np.exp(logw - special.logsumexp(logw))
    return NormalMix(w / w.sum(), post_mean, np.sqrt(post_var))


def predictive(mix: NormalMix, se: float) -> NormalMix:
    r"""Prior predictive of an estimate ``y ~ N(theta, se^2)`` when ``theta ~ mix``.

    ``y ~ sum_k w_k N(m_k, s_k^2 + se^2)`` (RBesT ``preddist`` for a normal mixture).  With
    ``se = 2/sqrt(D)`` this is the distribution of a trial's log-HR estimate after ``D`` events.
    """
    problems: list[Problem] = []
    sev = _scalar("se", se, problems, positive=True)
    if problems:
        raise ModelError("cannot form the predictive distribution", problems)
    return NormalMix(mix.weights, mix.means, np.sqrt(mix.sds**2 + sev**2))


def difference(mix_a: NormalMix, mix_b: NormalMix) -> NormalMix:
    r"""Distribution of ``A - B`` for independent ``A ~ mix_a`` and ``B ~ mix_b``.

    ``A - B ~ sum_{i,j} a_i b_j N(m_i - n_j, s_i^2 + t_j^2)``: a mixture of ``K_a * K_b`` components
    (component ``(i, j)`` at index ``i * K_b + j``).  RBesT ``mixdiff`` gives the same distribution
    (by simulation for non-normal families; exactly here).
    """
    w = np.outer(mix_a.weights, mix_b.weights).ravel()
    m = np.subtract.outer(mix_a.means, mix_b.means).ravel()
    s = np.sqrt(np.add.outer(mix_a.sds**2, mix_b.sds**2)).ravel()
    return NormalMix(w / w.sum(), m, s)


def robustify(mix: NormalMix, weight: float, mean: float = 0.0, sd: float = LOG_HR_UNIT_SD) -> NormalMix:
    r"""Robust mixture prior ``(1 - w) * mix + w * N(mean, sd^2)`` (Schmidli et al. 2014, *Biometrics* 70:1023).

    Parameters
    ----------
    mix : NormalMix
        The (MAP) prior to robustify; its weights are scaled by ``1 - w``.
    weight : float
        ``w`` in ``[0, 1]``, the prior probability that the new trial is not exchangeable with the
        historical ones.  ``w = 0`` keeps ``mix`` (with a zero-weight extra component), ``w = 1`` keeps
        only the vague component.
    mean : float
        Location of the vague component.  RBesT ``robustify`` asks for it explicitly and recommends the
        null; the default here is the null effect ``log HR = 0``.
    sd : float
        Scale of the vague component.  Default :data:`LOG_HR_UNIT_SD` ``= 2``: the unit-information prior
        for a log HR (one event's worth; RBesT uses ``sigma/sqrt(n)`` with ``n = 1``).

    Returns
    -------
    NormalMix
        ``K + 1`` components; the vague one is last.
    """
    problems: list[Problem] = []
    w = _scalar("weight", weight, problems)
    if math.isfinite(w) and not 0.0 <= w <= 1.0:
        problems.append(Problem("the robust weight must lie in [0, 1]", value=repr(weight)))
    m = _scalar("mean", mean, problems)
    s = _scalar("sd", sd, problems, positive=True)
    if problems:
        raise ModelError("cannot robustify the mixture", problems)
    return NormalMix(
        np.append((1.0 - w) * mix.weights, w),
        np.append(mix.means, m),
        np.append(mix.sds, s),
    )


# ----------------------------------------------------------------------------- EM fit


@dataclass(frozen=True)
class EMFit:
    """Result of one EM run with a fixed number of components (see :func:`em_fit`).

    ``degenerate``: every start ended with a component worth fewer than :data:`MIN_COMPONENT_DRAWS` draws
    (``w_k n < 5``), a spurious maximum of the unbounded mixture likelihood (a component collapsed onto one
    or a few draws); :func:`fit_mixture` does not choose such a fit.
    """

    mix: NormalMix
    loglik: float
    n_iter: int
    converged: bool
    degenerate: bool = False


def _validate_draws(draws) -> np.ndarray:
    problems: list[Problem] = []
    x = _float_array("draws", draws, problems)
    if x is not None:
        if x.size < 2:
            problems.append(Problem(f"need at least 2 draws, got {x.size}"))
        elif not np.all(np.isfinite(x)):
            problems.append(Problem(f"draws must be finite ({int(np.sum(~np.isfinite(x)))} are not)"))
        elif np.ptp(x) == 0:
            problems.append(Problem("all draws are identical; a normal mixture needs spread"))
    if problems or x is None:
        raise ModelError("cannot fit a normal mixture", problems)
    return x


def _init_quantile(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal weights, means at the ``(2j - 1)/(2K)`` quantiles, common sd ``sd(x)/K``."""
    m = np.quantile(x, (2.0 * np.arange(1, k + 1) - 1.0) / (2.0 * k))
    return np.full(k, 1.0 / k), m, np.full(k, x.std() / k)


def _init_kmeanspp(x: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) then up to 20 Lloyd steps; cluster shares, means, sds.

    In one dimension the nearest centre is found by ``searchsorted`` on the midpoints of the sorted
    centres, and cluster sums by ``bincount``.
    """
    centers = [x[rng.integers(x.size)]]
    for _ in range(1, k):
        d2 = np.min((x[:, None] - np.asarray(centers)) ** 2, axis=1)
        tot = d2.sum()
        centers.append(x[rng.choice(x.size, p=d2 / tot)] if tot > 0 else x[rng.integers(x.size)])
    c = np.sort(np.asarray(centers, dtype=float))
    for _ in range(20):
        lab = np.searchsorted(0.5 * (c[:-1] + c[1:]), x)
        cnt = np.bincount(lab, minlength=k)
        new = np.sort(np.where(cnt > 0, np.bincount(lab, weights=x, minlength=k) / np.maximum(cnt, 1), c))
        if np.array_equal(new, c):
            break
        c = new
    lab = np.searchsorted(0.5 * (c[:-1] + c[1:]), x)
    cnt = np.bincount(lab, minlength=k).astype(float)
    mean = np.bincount(lab, weights=x, minlength=k) / np.maximum(cnt, 1.0)
    var = np.bincount(lab, weights=(x - mean[lab]) ** 2, minlength=k) / np.maximum(cnt, 1.0)
    sds = np.where((cnt > 1) & (var > 0), np.sqrt(var), x.std() / k)
    cnt = np.maximum(cnt, 1.0)
    return cnt / cnt.sum(), np.where(cnt > 0, mean, c), sds


MIN_COMPONENT_DRAWS = 5.0
"""A fitted component must carry at least this many draws' worth of weight (``w_k n``); fewer is degenerate."""

_BIN_ABOVE = 4000  # more draws than this: EM runs on a histogram first (see em_fit)
_N_BINS = 1000
_POLISH_ITER = 50


def _em_estep(x: np.ndarray, c: np.ndarray, w, m, var) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities ``r_sik`` and log-likelihoods ``sum_i c_i log p_s(x_i)`` for ``S`` parameter sets at
    once (shapes ``(S, K)`` in, ``(S, n, K)`` and ``(S,)`` out); log-sum-exp by hand as it runs every step.
    """
    with np.errstate(divide="ignore"):
        const = np.log(w) - 0.5 * np.log(var) - 0.5 * _LOG_2PI
    d = x[None, :, None] - m[:, None, :]
    lp = d * d * (-0.5 / var)[:, None, :] + const[:, None, :]
    mx = lp.max(axis=2)
    e = np.exp(lp - mx[:, :, None])
    tot = e.sum(axis=2)
    return e / tot[:, :, None], (mx + np.log(tot)) @ c


def _em(
    x: np.ndarray, c: np.ndarray, w, m, s, tol: float, max_iter: int, var_floor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    """EM for points ``x`` with multiplicities ``c``, run from ``S`` starts side by side (parameters of
    shape ``(S, K)``; a start stops moving once converged).  Returns weights, means, sds, log-likelihoods,
    steps taken and the converged flags.
    """
    n = float(c.sum())
    w, m, var = (np.array(a, dtype=float, ndmin=2) for a in (w, m, np.asarray(s, dtype=float) ** 2))
    r, ll = _em_estep(x, c, w, m, var)
    active = np.ones(w.shape[0], dtype=bool)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - it is reported
        rc = r * c[None, :, None]
        nk = rc.sum(axis=1)
        alive = nk > 1e-12 * n
        safe = np.where(alive, nk, 1.0)
        w_new = nk / nk.sum(axis=1, keepdims=True)
        m_new = np.where(alive, np.einsum("i,sik->sk", x, rc) / safe, m)
        d = x[None, :, None] - m_new[:, None, :]
        v_new = np.where(alive, np.einsum("sik,sik->sk", rc, d * d) / safe, var)
        v_new = np.maximum(v_new, var_floor)
        keep = active[:, None]
        w, m, var = np.where(keep, w_new, w), np.where(keep, m_new, m), np.where(keep, v_new, var)
        r, ll_new = _em_estep(x, c, w, m, var)
        # EM never decreases the likelihood.  Stop when the mean log-likelihood gains less than tol per
        # step: over-fitted components converge sublinearly, and choosing K needs l_K only to ~0.5
        # (the smallest penalty per extra component is 3 * 2 = 6).
        active &= ll_new - ll > tol * n
        ll = ll_new
        if not active.any():
            break
    return w, m, np.sqrt(var), ll, it, ~active


def _binned(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and counts of a ``_N_BINS``-bin histogram over the range of ``x`` (empty bins dropped)."""
    counts, edges = np.histogram(x, bins=_N_BINS)
    keep = counts > 0
    return (0.5 * (edges[:-1] + edges[1:]))[keep], counts[keep].astype(float)


def em_fit(
    draws,
    k: int,
    *,
    seed: int | np.random.Generator | None = 0,
    n_init: int = 3,
    tol: float = 1e-7,
    max_iter: int = 2000,
    polish: bool = True,
) -> EMFit:
    r"""Maximum-likelihood ``K``-component normal mixture for ``draws`` by EM (Dempster, Laird & Rubin 1977).

    E-step: responsibilities ``r_ik = w_k N(x_i; m_k, s_k^2) / sum_j w_j N(x_i; m_j, s_j^2)``;
    M-step: ``w_k = sum_i r_ik / n``, ``m_k = sum_i r_ik x_i / sum_i r_ik`` and
    ``s_k^2 = sum_i r_ik (x_i - m_k)^2 / sum_i r_ik`` (floored at ``(1e-6 sd(x))^2``).

    ``n_init`` starts are tried and the highest likelihood wins: one deterministic start from the
    quantiles of ``draws`` plus ``n_init - 1`` k-means++ starts drawn with ``seed`` (RBesT ``mixfit``
    starts from k-nearest-neighbour clustering).  Iteration stops when the mean log-likelihood per draw
    gains less than ``tol`` in one step, or after ``max_iter`` steps (``converged`` is then False).

    With more than 4,000 draws the starts are first run on a 1,000-bin histogram (each bin centre
    weighted by its count: grouped-data EM, McLachlan & Jones 1988, with the midpoint approximation;
    the bin width is 1/1000 of the range), which makes a step cost ``O(bins K)`` instead of
    ``O(n K)``; the best start is then polished by up to 50 exact EM steps on the raw draws, and the
    reported log-likelihood is always the exact one (with ``polish=False`` it is evaluated at the binned
    optimum: :func:`fit_mixture` uses that to compare ``K`` and polishes only the winner).  Components are
    returned by decreasing weight, so the result is deterministic given ``seed``.

    The likelihood of a normal mixture is unbounded: a component can collapse onto a single draw (its sd
    shrinking to the variance floor), typically from a k-means++ start at an outlying draw.  Starts that end
    with a component worth fewer than :data:`MIN_COMPONENT_DRAWS` draws (``w_k n < 5``) lose to any start
    that does not; if all of them do, the fit is flagged ``degenerate``.
    """
    x = _validate_draws(draws)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ModelError("cannot fit a normal mixture", [Problem("k must be a positive integer", value=repr(k))])
    k = int(k)
    if k == 1:  # the MLE is closed form
        ll = float(np.sum(-0.5 * ((x - x.mean()) / x.std()) ** 2 - math.log(x.std()) - 0.5 * _LOG_2PI))
        return EMFit(NormalMix.single(float(x.mean()), float(x.std())), ll, 0, True)
    rng = _rng(seed)
    var_floor = (1e-6 * x.std()) ** 2  # keeps a component from collapsing onto repeated draws
    starts = [_init_quantile(x, k)] + [_init_kmeanspp(x, k, rng) for _ in range(max(n_init, 1) - 1)]
    binned = x.size > _BIN_ABOVE
    xs, cs = _binned(x) if binned else (x, np.ones(x.size))
    w0, m0, s0 = (np.stack(a) for a in zip(*starts, strict=True))
    w, m, s, lls, it, convs = _em(xs, cs, w0, m0, s0, tol, max_iter, var_floor)
    sound = (w * x.size).min(axis=1) >= MIN_COMPONENT_DRAWS
    b = int(np.argmax(np.where(sound, lls, -np.inf))) if sound.any() else int(np.argmax(lls))
    w, m, s, ll, conv = w[b : b + 1], m[b : b + 1], s[b : b + 1], float(lls[b]), bool(convs[b])
    if binned:
        steps = _POLISH_ITER if polish else 0
        wp, mp, sp, ll_exact, it2, conv2 = _em(x, np.ones(x.size), w, m, s, tol, steps, var_floor)
        if wp.min() * x.size < MIN_COMPONENT_DRAWS <= w.min() * x.size:  # polishing collapsed a component
            wp, mp, sp, ll_exact, *_ = _em(x, np.ones(x.size), w, m, s, tol, 0, var_floor)
        w, m, s = wp, mp, sp
        ll, it, conv = float(ll_exact[0]), it + it2, bool(conv2[0]) if polish else conv
    w, m, s = w[0], m[0], s[0]
    order = np.lexsort((m, -w))
    degenerate = bool(w.min() * x.size < MIN_COMPONENT_DRAWS)
    return EMFit(NormalMix(w[order] / w.sum(), m[order], s[order]), ll, it, conv, degenerate)


_PENALTY = {"bic": None, "aic": 2.0, "rbest": 6.0}


def fit_mixture(
    draws,
    max_components: int = 4,
    criterion: Literal["bic", "aic", "rbest"] = "bic",
    *,
    seed: int | np.random.Generator | None = 0,
    n_init: int = 3,
) -> NormalMix:
    r"""Normal mixture fitted to draws, the number of components chosen by an information criterion.

    For ``K = 1, ..., max_components`` an EM fit (:func:`em_fit`) gives the maximised log-likelihood
    ``l_K`` with ``p_K = 3K - 1`` parameters, and the ``K`` minimising

    * ``"bic"``: ``-2 l_K + p_K log n`` (Schwarz 1978; the default here),
    * ``"aic"``: ``-2 l_K + 2 p_K``,
    * ``"rbest"``: ``-2 l_K + 6 p_K``, RBesT ``automixfit``'s default (AIC with penalty ``k = 6``,
      after Collett 2003, to favour few components)

    is kept (ties go to the smaller ``K``).  A degenerate fit (a component worth fewer than 5 draws, see
    :func:`em_fit`) is never chosen.  ``K > 1`` values with ``p_K >= n`` are skipped (``K = 1``, the
    closed-form normal fit, is always available, so two draws give one component).  Deterministic
    given ``seed``.  Use it to compress MCMC draws of a MAP prior, or draws from the grid mixture of
    :func:`harmoni_bayes.exact.nnhm_exact` (``NormalMix.from_mixture(fit.theta_new).sample(...)``), into
    a few components, as RBesT does with ``automixfit``.
    """
    x = _validate_draws(draws)
    problems: list[Problem] = []
    if isinstance(max_components, bool) or not isinstance(max_components, int | np.integer) or max_components < 1:
        problems.append(Problem("max_components must be a positive integer", value=repr(max_components)))
    if criterion not in _PENALTY:
        problems.append(Problem(f"criterion must be one of {sorted(_PENALTY)}", value=repr(criterion)))
    if problems:
        raise ModelError("cannot fit a normal mixture", problems)
    rng = _rng(seed)
    n = x.size
    penalty = _PENALTY[criterion]
    pen = math.log(n) if penalty is None else penalty
    best_score, best = math.inf, None
    for k in range(1, int(max_components) + 1):
        p = 3 * k - 1
        if k > 1 and p >= n:
            break
        fit = em_fit(x, k, seed=rng, n_init=n_init, polish=False)
        if fit.degenerate:  # a component collapsed onto a few draws: a spurious likelihood maximum
            continue
        score = -2.0 * fit.loglik + pen * p
        if score < best_score:
            best_score, best = score, fit
    if best is None:  # unreachable: K = 1 always has a finite score
        raise ModelError("cannot fit a normal mixture", [Problem("no number of components could be fitted")])
    if n > _BIN_ABOVE and len(best.mix) > 1:  # polish the chosen fit on the raw draws
        mix = best.mix
        w, m, s, *_ = _em(x, np.ones(n), mix.weights, mix.means, mix.sds, 1e-7, _POLISH_ITER, (1e-6 * x.std()) ** 2)
        if w.min() * n < MIN_COMPONENT_DRAWS:  # polishing collapsed a component: keep the binned optimum
            return mix
        order = np.lexsort((m[0], -w[0]))
        return NormalMix(w[0][order] / w[0].sum(), m[0][order], s[0][order])
    return best.mix


# ----------------------------------------------------------------------------- ESS


_ELIR_CUTS = np.array(
    [-12.0, -8.0, -6.0, -4.0, -3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0]
)
_ELIR_GL = np.polynomial.legendre.leggauss(20)


def _elir_integral(mix: NormalMix) -> float:
    r"""``E_p[i(theta)] = int p(x) i(x) dx = int p'(x)^2 / p(x) dx``.

    Integration by parts removes the ``-p''`` term (it integrates to zero), leaving a non-negative
    integrand ``p(x) (d log p/dx)^2``.  It is integrated by composite 20-point Gauss-Legendre on panels
    cut at ``m_k + j s_k`` for every component (``j`` from -12 to 12, denser near the centre), so every
    component's scale is resolved wherever it matters; beyond 12 sds of the outermost components the
    neglected mass is below ``1e-30``.  A mixture with more than 20 components (a grid mixture from
    :func:`harmoni_bayes.exact.nnhm_exact`) gets uniform panels half as wide as its narrowest component of
    non-negligible weight instead (at most 4,000 panels), evaluated in blocks to bound memory.
    """
    if len(mix) <= 20:
        cuts = np.unique((mix.means[:, None] + mix.sds[:, None] * _ELIR_CUTS).ravel())
    else:
        live = mix.weights > 1e-12 * mix.weights.max()
        lo = float(np.min(mix.means[live] - 12 * mix.sds[live]))
        hi = float(np.max(mix.means[live] + 12 * mix.sds[live]))
        n_panel = min(4000, math.ceil((hi - lo) / (0.5 * float(np.min(mix.sds[live])))))
        cuts = np.linspace(lo, hi, n_panel + 1)
    half = 0.5 * np.diff(cuts)
    nodes, wts = _ELIR_GL
    x = ((cuts[:-1] + half)[:, None] + half[:, None] * nodes).ravel()
    w = (half[:, None] * wts).ravel()
    block = max(1, 2_000_000 // len(mix))
    total = 0.0
    for i in range(0, x.size, block):
        xb = x[i : i + block]
        total += float(np.sum(w[i : i + block] * np.asarray(mix.pdf(xb)) * np.asarray(mix.score(xb)) ** 2))
    return total


def ess(
    mix: NormalMix,
    method: Literal["elir", "moment", "morita"] = "elir",
    sigma: float = LOG_HR_UNIT_SD,
    *,
    flatten: float | None = None,
) -> float:
    r"""Prior effective sample size of a normal mixture with sampling sd ``sigma``.

    With the unit-information sd ``sigma = 2`` of a log HR (1:1 allocation) the ESS is a number of
    **events**: ``N(m, s^2)`` is worth ``4/s^2`` events, as ``D`` events give ``Var(log HR_hat) = 4/D``.
    For one normal component all three methods give ``sigma^2 / s^2``.

    Parameters
    ----------
    mix : NormalMix
        The prior.
    method : {"elir", "moment", "morita"}
        * ``"moment"``: moment matching, ``sigma^2 / Var[theta]`` (RBesT; conservative for mixtures);
        * ``"morita"``: Morita, Thall & Mueller (2008, *Biometrics* 64:595) evaluated at the prior
          **mode** ``theta*`` as in RBesT: ``sigma^2 (i(theta*) - i_0)`` with the local information
          ``i = -(log p)''`` (:meth:`NormalMix.information`) and ``i_0`` the information of the
          "flattened" baseline prior (liberal for mixtures);
        * ``"elir"``: expected local-information ratio (Neuenschwander, Weber, Schmidli & O'Hagan 2020,
          *Biometrics* 76:578), ``sigma^2 E_p[i(theta)] = sigma^2 int p'^2/p`` (the Fisher information
          ``1/sigma^2`` of one observation does not depend on ``theta``).  It is the only one of the
          three that is predictively consistent: averaged over the prior predictive, the posterior
          ELIR after ``n`` observations is exactly the prior ELIR plus ``n``.
    sigma : float
        Sampling sd of one observation (default 2, one event of a log HR).
    flatten : float, optional
        Morita only.  ``None`` (default) takes the limit of an infinitely flat baseline prior,
        ``i_0 = 0``, as in Morita et al.'s definition; ``flatten = s`` uses RBesT's finite baseline
        ``N(theta*, s max_k s_k^2)``, ``i_0 = 1 / (s max_k s_k^2)`` (RBesT ``ess(..., s = 100)``,
        ``R/mixess.R``), which gives ``(1 - 1/s) sigma^2/s^2`` for one component.

    Returns
    -------
    float
        The ESS (not rounded).  Morita and ELIR can be negative or unstable only for pathological
        inputs; for a bimodal mixture the Morita value describes the highest mode only (RBesT warns).
    """
    problems: list[Problem] = []
    sig = _scalar("sigma", sigma, problems, positive=True)
    if method not in ("elir", "moment", "morita"):
        problems.append(Problem("method must be 'elir', 'moment' or 'morita'", value=repr(method)))
    if flatten is not None:
        fl = _scalar("flatten", flatten, problems, positive=True)
        if method != "morita":
            problems.append(Problem("flatten applies to the 'morita' method only"))
    if problems:
        raise ModelError("cannot compute the effective sample size", problems)
    if method == "moment":
        return sig**2 / mix.var()
    if method == "morita":
        info0 = 0.0 if flatten is None else 1.0 / (fl * float(np.max(mix.sds**2)))
        return sig**2 * (float(mix.information(mix.mode())) - info0)
    if len(mix) == 1:
        return sig**2 / float(mix.sds[0]) ** 2
    return sig**2 * _elir_integral(mix)


def unit_information_sd(allocation: float = 1.0) -> float:
    """Per-event sd of a log HR with allocation ratio ``r`` (experimental:control): ``(1 + r)/sqrt(r)``.

    ``Var(log HR_hat) = (1 + r)^2 / (r D)`` (Schoenfeld 1981), so ``r = 1`` gives 2.
    """
    problems: list[Problem] = []
    r = _scalar("allocation", allocation, problems, positive=True)
    if problems:
        raise ModelError("invalid allocation ratio", problems)
    return (1.0 + r) / math.sqrt(r)


def as_normal_mix(obj: NormalMix | Sequence) -> NormalMix:
    """A :class:`NormalMix` as is, or any object with ``weights``/``means``/``sds`` converted by
    :meth:`NormalMix.from_mixture` (for example ``nnhm_exact(...).theta_new``).
    """
    if isinstance(obj, NormalMix):
        return obj
    if all(hasattr(obj, a) for a in ("weights", "means", "sds")):
        return NormalMix.from_mixture(obj)
    raise ModelError(
        "invalid prior",
        [Problem(f"expected a NormalMix (or an object with weights, means and sds), got {type(obj).__name__}")],
    )
