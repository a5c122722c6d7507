r"""Exact (deterministic) engine for the normal-normal hierarchical model (NNHM).

Model (log-HR scale, ``theta = log HR``)::

    y_i     | theta_i   ~ N(theta_i, s_i^2)          i = 1..k
    theta_i | mu, tau   ~ N(mu, tau^2)
    mu                  ~ N(m0, v0)   (a NormalPrior)   or   p(mu) = 1 (flat, improper)
    tau                 ~ p(tau)      (HalfNormal, HalfCauchy or Turner log-normal)

Conditional on ``tau`` everything is normal (methods brief section b; bayesmeta).  With
``v_i = s_i^2 + tau^2`` and ``w_i = 1/v_i``, a normal prior on ``mu`` entering as one extra
pseudo-study ``(m0, v0)`` with no ``tau`` added (``w_0 = 1/v0``; ``w_0 = 0`` for a flat prior):

* ``W(tau) = sum_i w_i + w_0``, ``mu_hat(tau) = (sum_i w_i y_i + w_0 m0) / W``, ``V_mu(tau) = 1/W``;
* marginal likelihood of ``tau`` (``mu`` integrated out)::

      log L(tau) = -1/2 sum_i log v_i - 1/2 log W - 1/2 [sum_i w_i (y_i - mu_hat)^2 + w_0 (m0 - mu_hat)^2]

  and ``p(tau | y) ∝ p(tau) L(tau)``;
* ``mu | tau, y ~ N(mu_hat, V_mu)``;
* with ``B_i = s_i^2 / (s_i^2 + tau^2)``:
  ``theta_i | tau, y ~ N(B_i mu_hat + (1 - B_i) y_i, (1 - B_i) s_i^2 + B_i^2 V_mu)`` and
  ``Cov(theta_i, theta_j | tau, y) = (1 - B_i) s_i^2 delta_ij + B_i B_j V_mu``.  (Given ``mu`` and
  ``tau`` the ``theta_i`` are independent, ``theta_i | mu, tau, y ~ N(B_i mu + (1 - B_i) y_i,
  (1 - B_i) s_i^2)``; the prior on ``mu`` only changes ``mu_hat`` and ``V_mu``, so the same formula
  holds for a flat and for a normal prior on ``mu``);
* ``theta_new | tau, y ~ N(mu_hat, V_mu + tau^2)``.

Every marginal is therefore a mixture of normals over ``tau``.  The integral over ``tau`` is
done on a grid (as bayesmeta does, with a fixed grid instead of the DIRECT algorithm):

* substitution ``tau = c sinh(u)``, ``u >= 0``: linear spacing in ``tau`` below the scale ``c``
  and logarithmic spacing above it, so heavy (half-Cauchy) tails and priors concentrated near
  zero are both covered with a few thousand points;
* midpoint rule in ``u``.  The integrand ``p(tau) L(tau) dtau/du`` is smooth, decays at least
  exponentially in ``u`` and is an even function of ``u`` at ``u = 0`` (``L`` depends on
  ``tau^2``; the half-normal and half-Cauchy densities are even; the log-normal density is flat
  to all orders at 0), so the rule converges faster than any power of the spacing;
* two passes: a first grid reaching from ``tau = 0`` to far beyond both the prior's
  ``1 - 1e-12`` quantile and the data's scale locates the posterior; the second grid (``n_grid``
  points) covers only where the integrand exceeds ``e^-40`` of its maximum.

Posterior node weights are ``p(tau_j) L(tau_j) (dtau/du)_j`` normalised to sum to one.

Moments can be infinite for heavy-tailed priors with few studies (for example the mean of
``tau`` under a half-Cauchy prior with one study and a flat ``mu`` prior); the grid then
returns the moments of the posterior truncated at the far end of the grid.  Quantiles and
intervals are always well defined.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import special

from harmoni_bayes.constants import INTERVAL_PROB
from harmoni_bayes.constants import STAT_KEYS as SUMMARY_KEYS
from harmoni_bayes.priors import HalfCauchyPrior, HalfNormalPrior, NormalPrior, TurnerPrior

__all__ = ["GridDistribution", "LazySummary", "NNHMExact", "NormalMixture", "nnhm_exact"]

_LOG_DENSITY_CUTOFF = 40.0  # keep grid where the tau integrand is within e^-40 of its maximum
_PRIOR_TAIL = 1e-12  # the first-pass grid reaches beyond the prior's 1 - 1e-12 quantile
_CHUNK = 1 << 20  # elements per block when evaluating mixtures on many points
# the parts of a summary (SUMMARY_KEYS), each computed on its own when first read (LazySummary)
_MOMENTS, _QUANTILES, _HDI = ("mean", "sd"), ("median", "q2.5", "q97.5"), ("hdi_low", "hdi_high")
assert _MOMENTS + _QUANTILES + _HDI == SUMMARY_KEYS


# ----------------------------------------------------------------------------- helpers


def _as_1d(name: str, x) -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(x, dtype=float))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float, copy=True)
    a.flags.writeable = False
    return a


def _root(f: Callable[[float], float], a: float, b: float, xtol: float) -> float:
    """A root of ``f`` in ``[a, b]`` where ``f(a) < 0 < f(b)``: regula falsi with the Illinois step (the end that
    stays has its value halved), bisecting whenever that fails to halve the bracket.  Here rather than
    ``scipy.optimize.brentq``: importing ``scipy.optimize`` costs the exact path a tenth of a second (issue 14).
    """
    fa, fb = f(a), f(b)
    side = 0
    while b - a > xtol + 4 * np.finfo(float).eps * max(abs(a), abs(b)):  # (as brentq's rtol: floats run out)
        x = b - fb * (b - a) / (fb - fa) if fb != fa else 0.5 * (a + b)
        if not a < x < b:
            x = 0.5 * (a + b)
        fx = f(x)
        if fx == 0:
            return x
        width = b - a
        if fx < 0:
            a, fa = x, fx
            if side == -1:
                fb *= 0.5
            side = -1
        else:
            b, fb = x, fx
            if side == 1:
                fa *= 0.5
            side = 1
        if b - a > 0.5 * width:  # slow progress: bisect once
            m = 0.5 * (a + b)
            fm = f(m)
            if fm == 0:
                return m
            if fm < 0:
                a, fa = m, fm
            else:
                b, fb = m, fm
            side = 0
    return 0.5 * (a + b)


def _minimum(f: Callable[[float], float], a: float, b: float, xtol: float) -> tuple[float, float]:
    """``(x, f(x))`` at the minimum of a unimodal ``f`` on ``[a, b]`` by golden-section search (see :func:`_root`
    for why not ``scipy.optimize``).
    """
    r = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - r * (b - a), a + r * (b - a)
    fc, fd = f(c), f(d)
    while b - a > xtol + 4 * np.finfo(float).eps * max(abs(a), abs(b)):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - r * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + r * (b - a)
            fd = f(d)
    return (c, fc) if fc <= fd else (d, fd)


def _shortest_interval(
    ppf, prob: float, transform=None, log_density=None, n: int = 21, solve=None
) -> tuple[float, float]:
    """Shortest interval with probability ``prob``: ``[Q(p), Q(p + prob)]`` minimising the width.

    For a unimodal density (also one whose mode is at a boundary, as for ``tau``) the shortest
    interval is the highest-density interval.  ``transform`` (monotone increasing) gives the
    shortest interval of ``transform(X)``, i.e. the HDI computed from the density of the
    transformed variable.

    A grid of ``n`` values of ``p`` brackets the optimum.  With ``log_density`` (the log density
    of the transformed variable, as a function of the untransformed ``x``) the optimum is then
    refined by solving the first-order condition ``f(lower) = f(upper)`` with a bracketing root
    finder over ``p``; otherwise the width is minimised directly.

    ``solve(lower, upper, p_range)``, when given, is tried first: it solves both conditions for the ends at
    once from the grid's best interval (:meth:`NormalMixture._hdi_ends`) and returns them, or ``None`` when it
    cannot, or when its ``lower`` end lies outside ``p_range``, the bracket of ``p`` around the grid's best
    (so it finds the interval the root finder would); the root finder is the fallback.
    """
    tr = (lambda v: v) if transform is None else transform
    p = np.linspace(0.0, 1.0 - prob, n)
    xa, xb = ppf(p), ppf(np.minimum(p + prob, 1.0))
    with np.errstate(invalid="ignore"):
        width = tr(xb) - tr(xa)
    width = np.where(np.isnan(width), np.inf, width)
    i = int(np.argmin(width))
    best_p, best_w = float(p[i]), float(width[i])
    a, b = float(p[max(i - 1, 0)]), float(p[min(i + 1, p.size - 1)])

    def bounds(pp: float) -> np.ndarray:
        return ppf(np.array([pp, min(pp + prob, 1.0)]))

    # Newton starts from the grid's best interval, or from its neighbour when an end is infinite (p = 0 on the HR
    # scale: the interval [0, Q(prob)] has a finite width).
    start = next((j for j in (i, i + 1, i - 1) if 0 <= j < p.size and np.isfinite(xa[j]) and np.isfinite(xb[j])), None)
    if np.isfinite(best_w) and b > a and solve is not None and start is not None:
        ends = solve(float(xa[start]), float(xb[start]), (a, b))
        if ends is not None:
            lo_, hi_ = tr(np.asarray(ends))
            if float(hi_ - lo_) <= best_w:
                return float(lo_), float(hi_)
    if np.isfinite(best_w) and b > a:
        refined = None
        if log_density is not None:

            def g(pp: float) -> float:
                with np.errstate(all="ignore"):
                    d = log_density(bounds(pp))
                val = float(d[0] - d[1])
                return -math.inf if math.isnan(val) else val

            ga, gb = g(a), g(b)
            if ga < 0 < gb:
                refined = _root(lambda pp: max(min(g(pp), 1e300), -1e300), a, b, xtol=1e-15)
            elif i == 0 and ga >= 0:
                refined = 0.0  # density highest at the lower boundary
        if refined is None:

            def f(pp: float) -> float:
                lo_, hi_ = tr(bounds(pp))
                w = float(hi_ - lo_)
                return w if math.isfinite(w) else math.inf

            x_min, f_min = _minimum(f, a, b, xtol=1e-12)
            if f_min < best_w:
                refined = x_min
        if refined is not None:
            lo_, hi_ = tr(bounds(refined))
            if float(hi_ - lo_) <= best_w:
                best_p = refined
    lo_, hi_ = tr(bounds(best_p))
    return float(lo_), float(hi_)


class LazySummary(Mapping[str, float]):
    """A posterior summary whose parts are computed when first read.

    ``parts`` are ``(keys, compute)`` pairs; ``compute()`` returns the values of its keys.  The parts are
    independent (each computes its numbers from the distribution alone), so the numbers do not depend on which
    part is read first.  The HDI costs most of a summary, and the sensitivity strip's exact refits read only the
    median and the equal-tailed interval of one quantity (issue 14).
    """

    def __init__(self, parts: Sequence[tuple[tuple[str, ...], Callable[[], Sequence[float]]]]):
        self._compute = {k: (keys, compute) for keys, compute in parts for k in keys}
        self._values: dict[str, float] = {}

    def __getitem__(self, key: str) -> float:
        if key not in self._values:
            keys, compute = self._compute[key]
            self._values |= {k: float(v) for k, v in zip(keys, compute(), strict=True)}
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._compute)

    def __len__(self) -> int:
        return len(self._compute)

    def __repr__(self) -> str:
        return f"LazySummary({dict(self)})"


# ----------------------------------------------------------------------------- NormalMixture


@dataclass(frozen=True)
class _LiveComponents:
    """A mixture's components with positive weight, and what every evaluation of its CDF and density needs.

    Kept once per mixture: a quantile takes tens of evaluations at a few points each, and with thousands of
    components these arrays cost as much as the evaluation.  ``all_positive`` (no point mass) lets the
    evaluation skip the point-mass branches, which ``np.where`` would discard anyway.
    """

    weights: np.ndarray
    means: np.ndarray
    positive: np.ndarray  # sds > 0
    sds_safe: np.ndarray  # sds, with 1 for a point mass (no division by zero)
    density_norm: np.ndarray  # sqrt(2 pi) * sds_safe
    all_positive: bool

    @classmethod
    def of(cls, weights: np.ndarray, means: np.ndarray, sds: np.ndarray) -> _LiveComponents:
        """From the live components' weights, means and SDs."""
        positive = sds > 0
        sds_safe = np.where(positive, sds, 1.0)
        return cls(weights, means, positive, sds_safe, math.sqrt(2 * math.pi) * sds_safe, bool(positive.all()))


@dataclass(frozen=True, eq=False)
class NormalMixture:
    r"""Marginal posterior of a scalar on the LOG scale, a finite mixture of normals.

    ``X ~ sum_j weights_j N(means_j, sds_j^2)`` (one component per ``tau`` grid node).  Weights
    are normalised to sum to one on construction; components with zero weight are kept.

    * ``E[X] = sum_j w_j m_j``; ``Var[X] = sum_j w_j (s_j^2 + (m_j - E[X])^2)``;
    * ``F(x) = sum_j w_j Phi((x - m_j)/s_j)``, ``f(x) = sum_j w_j phi((x - m_j)/s_j)/s_j``;
    * on the HR scale ``Y = exp(X)``: ``E[Y] = sum_j w_j exp(m_j + s_j^2/2)`` and
      ``Var[Y] = sum_j w_j exp(2 m_j + s_j^2)(exp(s_j^2) - 1) + sum_j w_j (exp(m_j + s_j^2/2) - E[Y])^2``.
    """

    weights: np.ndarray
    means: np.ndarray
    sds: np.ndarray
    _live: np.ndarray = field(init=False, repr=False, compare=False)
    _parts: _LiveComponents = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        w = _as_1d("weights", self.weights)
        m = _as_1d("means", self.means)
        s = _as_1d("sds", self.sds)
        if not (w.size == m.size == s.size) or w.size == 0:
            raise ValueError(
                f"weights, means and sds must have the same non-zero length, got {w.size}, {m.size}, {s.size}"
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        if not np.all(np.isfinite(m)):
            raise ValueError("means must be finite")
        if not np.all(np.isfinite(s)) or np.any(s < 0):
            raise ValueError("sds must be finite and non-negative")
        object.__setattr__(self, "weights", _readonly(w / w.sum()))
        object.__setattr__(self, "means", _readonly(m))
        object.__setattr__(self, "sds", _readonly(s))
        live = self.weights > 0
        object.__setattr__(self, "_live", live)
        object.__setattr__(self, "_parts", _LiveComponents.of(self.weights[live], self.means[live], self.sds[live]))

    # moments -----------------------------------------------------------------------------
    def mean(self) -> float:
        """Posterior mean ``sum_j w_j m_j`` (log scale)."""
        return float(np.dot(self.weights, self.means))

    def sd(self) -> float:
        """Posterior SD ``sqrt(sum_j w_j (s_j^2 + (m_j - mean)^2))`` (log scale)."""
        mu = self.mean()
        return float(math.sqrt(np.dot(self.weights, self.sds**2 + (self.means - mu) ** 2)))

    # distribution functions -----------------------------------------------------------------
    def _eval(self, x: Any, kind: str) -> Any:
        """Mixture ``cdf``, ``pdf``, ``both``, or ``all`` (cdf, pdf and the pdf's derivative) at the points ``x``.

        Evaluated block-wise; ``all`` only for a mixture without point masses.
        """
        x = np.asarray(x, dtype=float)
        flat = x.reshape(-1)
        c = self._parts
        w, m = c.weights, c.means
        cdf = np.empty(flat.size)
        pdf = np.empty(flat.size)
        dpdf = np.empty(flat.size) if kind == "all" else pdf
        step = max(1, _CHUNK // max(w.size, 1))
        for start in range(0, flat.size, step):
            xs = flat[start : start + step, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                z = (xs - m) / c.sds_safe
                if not c.all_positive:
                    z = np.where(c.positive, z, np.where(xs >= m, np.inf, -np.inf))
            if kind != "pdf":
                cdf[start : start + step] = special.ndtr(z) @ w
            if kind != "cdf":  # a zero-sd component is a point mass and has no density
                dens = np.exp(-0.5 * z**2) / c.density_norm
                if not c.all_positive:
                    dens = np.where(c.positive, dens, 0.0)
                pdf[start : start + step] = dens @ w
                if kind == "all":  # f'(x) = -sum_j w_j phi(z_j) z_j / s_j^2
                    dpdf[start : start + step] = -((dens * z / c.sds_safe) @ w)
        nan = np.isnan(flat)
        cdf = np.where(nan, np.nan, cdf).reshape(x.shape)
        pdf = np.where(nan, np.nan, pdf).reshape(x.shape)
        if kind == "all":
            return cdf, pdf, np.where(nan, np.nan, dpdf).reshape(x.shape)
        return {"cdf": cdf, "pdf": pdf, "both": (cdf, pdf)}[kind]

    def cdf(self, x) -> np.ndarray | float:
        """``P(X <= x) = sum_j w_j Phi((x - m_j)/s_j)``; vectorised over ``x``."""
        out = np.clip(self._eval(x, "cdf"), 0.0, 1.0)
        return float(out) if out.ndim == 0 else out

    def pdf(self, x) -> np.ndarray | float:
        """Density ``sum_j w_j phi((x - m_j)/s_j)/s_j``; vectorised over ``x``."""
        out = self._eval(x, "pdf")
        return float(out) if out.ndim == 0 else out

    def _log_pdf(self, x) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self._eval(x, "pdf"))

    def prob_below(self, x: float) -> float:
        """``P(X < x)`` on the log scale, e.g. ``prob_below(0.0) = P(HR < 1)``."""
        return float(self.cdf(float(x)))

    def ppf(self, q: Any) -> Any:
        """Quantile function, vectorised: the root of ``F(x) = q``.

        Safeguarded Newton iteration inside the exact bracket
        ``[min_j(m_j + s_j z_q), max_j(m_j + s_j z_q)]`` (``z_q = Phi^{-1}(q)``): below the lower
        end every component's CDF is at most ``q``, above the upper end at least ``q``.
        Falls back to bisection whenever a Newton step leaves the bracket, and whenever a step is not at
        least half as small as the one before: near a narrow component Newton can cycle between the two
        sides of the root without converging, and a bisection then halves the bracket.
        """
        q = np.asarray(q, dtype=float)
        if np.any((q < 0) | (q > 1)):
            raise ValueError("probabilities must lie in [0, 1]")
        flat = q.reshape(-1)
        out = np.full(flat.size, np.nan)
        out[flat == 0] = -np.inf
        out[flat == 1] = np.inf
        inner = (flat > 0) & (flat < 1)
        if np.any(inner):
            out[inner] = self._ppf_inner(flat[inner])
        out = out.reshape(q.shape)
        return float(out) if out.ndim == 0 else out

    def _ppf_inner(self, q: np.ndarray) -> np.ndarray:
        m, s = self.means[self._live], self.sds[self._live]
        z = special.ndtri(q)
        cand = m[None, :] + s[None, :] * z[:, None]
        lo, hi = cand.min(axis=1), cand.max(axis=1)
        x = np.clip(self.mean() + self.sd() * z, lo, hi)
        done = hi <= lo
        x = np.where(done, lo, x)
        last_step = np.full(x.shape, np.inf)
        for _ in range(400):
            act = ~done
            if not np.any(act):
                break
            xa, qa = x[act], q[act]
            cdf, f = self._eval(xa, "both")
            g = cdf - qa
            lo_a = np.where(g < 0, xa, lo[act])
            hi_a = np.where(g > 0, xa, hi[act])
            tol = 1e-14 * (1.0 + np.abs(xa))
            fin = (np.abs(g) <= 1e-15) | (hi_a - lo_a <= tol)
            with np.errstate(all="ignore"):
                newton = xa - g / f
            ok = np.isfinite(newton) & (newton > lo_a) & (newton < hi_a)
            ok &= np.abs(newton - xa) <= 0.5 * last_step[act]  # not converging: cycling, or a flat stretch
            x_new = np.where(ok, newton, 0.5 * (lo_a + hi_a))
            last_step[act] = np.abs(x_new - xa)
            # a Newton step smaller than the tolerance ends the iteration too
            fin |= ok & (np.abs(x_new - xa) <= tol)
            x[act] = np.where(fin, np.where(ok, x_new, xa), x_new)
            lo[act], hi[act] = lo_a, hi_a
            done[act] = fin
        return x

    def _hdi_ends(
        self, lo: float, hi: float, shift: float, prob: float, p_range: tuple[float, float]
    ) -> tuple[float, float] | None:
        r"""The ends ``(L, U)`` (on the scale of ``X``) of the HDI of ``Y = g(X)``, by Newton's method.

        ``shift`` 0: ``g(x) = x``; 1: ``g(x) = exp(x)``.  Both conditions are solved at once, from ``(lo, hi)``::

            r1 = F(U) - F(L) - prob = 0                      (the interval holds prob)
            r2 = l(L) - l(U) = 0,   l(x) = log f(x) - shift x   (equal density of Y at both ends)

        with the Jacobian ``[[-f(L), f(U)], [l'(L), -l'(U)]]``, ``l' = f'/f - shift``: one evaluation of the
        mixture at two points a step, where solving ``r2`` over ``p`` with ``r1`` kept by quantiles takes tens of
        quantiles of tens of evaluations each (issue 14: the HDIs were the largest cost of the exact reports).
        At the HDI of a unimodal density ``l'(L) > 0 > l'(U)``, so the Jacobian's determinant is negative and the
        iteration converges quadratically from the grid's best interval.  A step that does not lower the residual
        is halved.  ``None`` (the caller falls back to the root finder) when it does not converge, or when the
        solution's ``F(L)`` lies outside ``p_range``, the bracket around the grid's best.
        """
        x = np.array([lo, hi])

        def residual(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
            cdf, f, df = self._eval(x, "all")
            with np.errstate(divide="ignore", invalid="ignore"):
                ell, dell = np.log(f) - shift * x, df / f - shift
            r = np.array([cdf[1] - cdf[0] - prob, ell[0] - ell[1]])
            jac = np.array([[-f[0], f[1]], [dell[0], -dell[1]]])
            return r, jac, float(cdf[0])

        r, jac, p_lo = residual(x)
        for _ in range(60):
            if not np.all(np.isfinite(r)) or not np.all(np.isfinite(jac)):
                return None
            norm = math.hypot(r[0], r[1])
            if abs(r[0]) <= 1e-15 and abs(r[1]) <= 1e-12:
                break
            det = jac[0, 0] * jac[1, 1] - jac[0, 1] * jac[1, 0]
            if det == 0:
                return None
            step = np.array([jac[0, 1] * r[1] - jac[1, 1] * r[0], jac[1, 0] * r[0] - jac[0, 0] * r[1]]) / det
            t = 1.0
            while t > 1e-6:  # damped: halve a step that does not lower the residual
                trial = x + t * step
                if trial[0] < trial[1]:
                    r_t, jac_t, p_t = residual(trial)
                    if np.all(np.isfinite(r_t)) and math.hypot(r_t[0], r_t[1]) < norm:
                        break
                t *= 0.5
            else:
                break  # no step lowers the residual: at the floats' resolution, or stuck (checked below)
            moved = np.abs(trial - x)
            x, r, jac, p_lo = trial, r_t, jac_t, p_t
            if np.all(moved <= 1e-15 * (1.0 + np.abs(x))):
                break
        if not (abs(r[0]) <= 1e-12 and abs(r[1]) <= 1e-8):
            return None
        if not p_range[0] <= p_lo <= p_range[1]:
            return None
        return float(x[0]), float(x[1])

    def reduced(self, bins: int = 512, sd_bins: int = 8) -> NormalMixture:
        """A mixture of a few thousand components at most, with the same mean and variance: components are merged
        within cells of a grid on (mean, log sd), each cell replaced by the one normal with its weight, mean and
        variance (moment-preserving merging; Runnalls 2007).

        ``bins`` mean cells span the components' means between their weighted ``1e-7`` and ``1 - 1e-7`` quantiles,
        so a cell's means differ by a small fraction of the mixture's spread; 16 more cells on each side take the
        tails.  For the grid engines' mixtures (component SDs within a factor of about two) merging moves quantiles
        by less than ``2e-4`` of the mixture's SD (``tests/test_exact.py``); probabilities far in a tail should be
        computed from the full mixture, whose CDF is one evaluation.  Every quantile takes
        tens of evaluations over all components, so a mixture of one component per node of a 4-D grid (tens of
        thousands) is reduced first.  Point masses (SD 0) are kept as they are.
        """
        w, m, s = (a[self._live] for a in (self.weights, self.means, self.sds))
        if w.size <= bins * sd_bins:
            return self
        order = np.argsort(m)
        cum = np.cumsum(w[order])
        lo, hi = m[order][np.searchsorted(cum, [1e-7, 1.0 - 1e-7]).clip(0, w.size - 1)]
        edges = np.unique(
            np.concatenate([np.linspace(m.min(), lo, 17), np.linspace(lo, hi, bins + 1), np.linspace(hi, m.max(), 17)])
        )
        keep = s == 0
        if keep.all():
            return self
        mi, si, wi = m[~keep], s[~keep], w[~keep]
        mean_cell = np.searchsorted(edges, mi, side="right")
        log_s = np.log(si)
        s_span = max(float(np.ptp(log_s)), 1e-300)
        sd_cell = np.minimum(((log_s - log_s.min()) / s_span * sd_bins).astype(np.int64), sd_bins - 1)
        _, cell = np.unique(mean_cell * sd_bins + sd_cell, return_inverse=True)
        cw = np.bincount(cell, wi)
        cm = np.bincount(cell, wi * mi) / cw
        cv = np.bincount(cell, wi * (si**2 + (mi - cm[cell]) ** 2)) / cw
        return NormalMixture(
            np.concatenate([cw, w[keep]]), np.concatenate([cm, m[keep]]), np.concatenate([np.sqrt(cv), s[keep]])
        )

    # summaries ---------------------------------------------------------------------------
    def _hr_moments(self) -> tuple[float, float]:
        w, m, s = (a[self._live] for a in (self.weights, self.means, self.sds))
        with np.errstate(over="ignore", invalid="ignore"):
            e1 = np.exp(m + 0.5 * s**2)
            mean = float(np.dot(w, e1))
            if not math.isfinite(mean):
                return math.inf, math.inf
            within = np.exp(2 * m + s**2) * np.expm1(s**2)
            var = float(np.dot(w, within + (e1 - mean) ** 2))
        return mean, math.sqrt(var) if math.isfinite(var) else math.inf

    def summary(self, scale: Literal["log", "hr"]) -> LazySummary:
        """Posterior summary with keys ``mean, sd, median, q2.5, q97.5, hdi_low, hdi_high``, each part computed
        when first read (:class:`LazySummary`).

        ``scale="log"``: of ``X`` itself.  ``scale="hr"``: of ``exp(X)``, with mean and SD exact
        from the log-normal moments of each component (infinite where they do not exist), ``log_mean`` and
        ``log_sd`` the moments of ``X``, quantiles ``exp`` of the log-scale
        quantiles, and the HDI computed from the density of ``exp(X)`` (the shortest interval on
        the HR scale, not ``exp`` of the log-scale HDI).  Intervals have probability
        ``INTERVAL_PROB``.
        """
        if scale not in ("log", "hr"):
            raise ValueError(f"scale must be 'log' or 'hr', got {scale!r}")

        def quantiles() -> Sequence[float]:
            a = (1.0 - INTERVAL_PROB) / 2
            qs = self.ppf(np.array([0.5, a, 1.0 - a]))
            return [math.exp(q) for q in qs] if scale == "hr" else qs

        def hdi() -> Sequence[float]:
            # With point masses (SD 0) there is no density to equate at the ends: minimise the width directly.
            smooth = self._parts.all_positive
            shift = 0.0 if scale == "log" else 1.0  # the density of exp(X) at exp(x) is f(x) exp(-x)
            log_density = (lambda x: self._log_pdf(x) - shift * x) if smooth else None
            solve = (lambda lo, hi, p_range: self._hdi_ends(lo, hi, shift, INTERVAL_PROB, p_range)) if smooth else None
            transform = np.exp if scale == "hr" else None
            # Newton needs the grid only to find the optimum's basin: 11 values of p (0.005 apart, the
            # equal-tailed interval's p = 0.025 among them) rather than 21 halve the grid's quantiles.
            return _shortest_interval(
                self.ppf,
                INTERVAL_PROB,
                transform=transform,
                log_density=log_density,
                solve=solve,
                n=11 if smooth else 21,
            )

        moments = self._hr_moments if scale == "hr" else lambda: (self.mean(), self.sd())
        parts = [(_MOMENTS, moments), (_QUANTILES, quantiles), (_HDI, hdi)]
        if scale == "hr":  # the moments a summary reports for an HR: of log HR (the HR's are tail-dominated)
            parts.append((("log_mean", "log_sd"), lambda: (self.mean(), self.sd())))
        return LazySummary(parts)


# ----------------------------------------------------------------------------- GridDistribution


@dataclass(frozen=True, eq=False)
class GridDistribution:
    r"""A posterior on a grid of support points (used for ``tau``).

    Node ``values_j`` (increasing) carries probability ``weights_j`` (normalised to sum to one).
    Each node stands for a cell ``[edges_j, edges_{j+1}]`` containing it; ``edges`` default to
    the midpoints between nodes (the outer cells symmetric about the end nodes).

    * moments are the quadrature sums ``E[T] = sum_j w_j t_j``, ``Var[T] = sum_j w_j (t_j - E[T])^2``;
    * ``cdf`` is piecewise linear between cell edges (``F(edges_j) = sum_{i<j} w_i``), i.e. the
      density is constant within each cell; ``ppf`` is its exact inverse.
    """

    values: np.ndarray
    weights: np.ndarray
    edges: Any = None  # an array after construction (None asks for the midpoint default)
    _cum: np.ndarray = field(init=False, repr=False, compare=False)
    _ppf_x: np.ndarray = field(init=False, repr=False, compare=False)
    _ppf_q: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        v = _as_1d("values", self.values)
        w = _as_1d("weights", self.weights)
        if v.size != w.size or v.size == 0:
            raise ValueError(f"values and weights must have the same non-zero length, got {v.size}, {w.size}")
        if not np.all(np.isfinite(v)) or np.any(np.diff(v) <= 0):
            raise ValueError("values must be finite and strictly increasing")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        if self.edges is None:
            if v.size < 2:
                raise ValueError("a one-point grid needs explicit edges")
            mid = 0.5 * (v[1:] + v[:-1])
            e = np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])
        else:
            e = _as_1d("edges", self.edges)
            if e.size != v.size + 1:
                raise ValueError(f"edges must have len(values) + 1 = {v.size + 1} entries, got {e.size}")
            if np.any(np.diff(e) <= 0) or np.any(v < e[:-1]) or np.any(v > e[1:]):
                raise ValueError("edges must be strictly increasing and bracket each value")
        w = w / w.sum()
        object.__setattr__(self, "values", _readonly(v))
        object.__setattr__(self, "weights", _readonly(w))
        object.__setattr__(self, "edges", _readonly(e))
        cum = np.concatenate([[0.0], np.cumsum(w)])
        cum = np.minimum(cum / cum[-1], 1.0)
        pos = np.flatnonzero(w > 0)
        a, b = pos[0], pos[-1] + 1  # first and last cells with mass: cdf runs 0..1 on [edges_a, edges_b]
        object.__setattr__(self, "_cum", cum)
        object.__setattr__(self, "_ppf_x", e[a : b + 1].copy())
        ppf_q = cum[a : b + 1].copy()
        ppf_q[0], ppf_q[-1] = 0.0, 1.0
        object.__setattr__(self, "_ppf_q", ppf_q)

    def mean(self) -> float:
        """``sum_j w_j t_j``."""
        return float(np.dot(self.weights, self.values))

    def sd(self) -> float:
        """``sqrt(sum_j w_j (t_j - mean)^2)``."""
        return float(math.sqrt(np.dot(self.weights, (self.values - self.mean()) ** 2)))

    def cdf(self, x) -> np.ndarray | float:
        """``P(T <= x)``, piecewise linear between cell edges; vectorised."""
        out = np.interp(np.asarray(x, dtype=float), self.edges, self._cum, left=0.0, right=1.0)
        return float(out) if np.ndim(out) == 0 else out

    def pdf(self, x) -> np.ndarray | float:
        """Cell-wise constant density ``w_j / (edges_{j+1} - edges_j)`` (0 outside the grid)."""
        x = np.asarray(x, dtype=float)
        j = np.searchsorted(self.edges, x, side="right") - 1
        inside = (j >= 0) & (j < self.values.size)
        jj = np.clip(j, 0, self.values.size - 1)
        dens = self.weights[jj] / np.diff(self.edges)[jj]
        out = np.where(inside, dens, 0.0)
        return float(out) if out.ndim == 0 else out

    def ppf(self, q: Any) -> Any:
        """Inverse of :meth:`cdf` (exact for the piecewise-linear CDF); vectorised."""
        q = np.asarray(q, dtype=float)
        if np.any((q < 0) | (q > 1)):
            raise ValueError("probabilities must lie in [0, 1]")
        out = np.interp(q, self._ppf_q, self._ppf_x)
        return float(out) if out.ndim == 0 else out

    def prob_below(self, x: float) -> float:
        """``P(T < x)``."""
        return float(self.cdf(float(x)))

    def summary(self) -> LazySummary:
        """Keys ``mean, sd, median, q2.5, q97.5, hdi_low, hdi_high`` (intervals ``INTERVAL_PROB``), each part
        computed when first read (:class:`LazySummary`).

        The HDI is the shortest interval; for a density whose maximum is at the lower boundary
        (e.g. ``tau`` near 0 under a half-normal prior) it is ``[lower end, Q(INTERVAL_PROB)]``.
        """
        a = (1.0 - INTERVAL_PROB) / 2
        return LazySummary(
            [
                (_MOMENTS, lambda: (self.mean(), self.sd())),
                (_QUANTILES, lambda: self.ppf(np.array([0.5, a, 1.0 - a]))),
                (_HDI, lambda: _shortest_interval(self.ppf, INTERVAL_PROB, n=2001)),
            ]
        )


# ----------------------------------------------------------------------------- the NNHM


@dataclass(frozen=True, eq=False)
class NNHMExact:
    r"""Exact marginal posteriors of the NNHM (see the module docstring for the formulas).

    ``tau`` is a :class:`GridDistribution`; ``mu``, ``theta`` (shrunken effects, in input order)
    and ``theta_new`` (the effect in a new study, ``N(mu_hat, V_mu + tau^2)`` given ``tau``) are
    :class:`NormalMixture` on the log-HR scale, all sharing the ``tau`` grid weights.
    """

    tau: GridDistribution
    mu: NormalMixture
    theta: list[NormalMixture]
    theta_new: NormalMixture
    _weights: np.ndarray = field(repr=False)
    _theta_mean: np.ndarray = field(repr=False)  # (n, k): B_i mu_hat + (1 - B_i) y_i
    _theta_within: np.ndarray = field(repr=False)  # (n, k): (1 - B_i) s_i^2
    _shrink: np.ndarray = field(repr=False)  # (n, k): B_i
    _v_mu: np.ndarray = field(repr=False)  # (n,): V_mu

    @property
    def k(self) -> int:
        """Number of studies (or subgroups)."""
        return len(self.theta)

    def contrast(self, c: Sequence[float]) -> NormalMixture:
        r"""Exact marginal posterior of ``sum_i c_i theta_i`` (log scale).

        Given ``tau`` it is normal with mean ``sum_i c_i E[theta_i | tau, y]`` and variance
        ``c' Sigma c = sum_i c_i^2 (1 - B_i) s_i^2 + (sum_i c_i B_i)^2 V_mu``, from
        ``Cov(theta_i, theta_j | tau, y) = (1 - B_i) s_i^2 delta_ij + B_i B_j V_mu``.  Use
        ``c = e_a - e_b`` for ``log hr_ratio[a/b]`` and information shares for a
        population-averaged effect.
        """
        cv = _as_1d("c", c)
        if cv.size != self.k:
            raise ValueError(f"c must have one entry per study ({self.k}), got {cv.size}")
        if not np.all(np.isfinite(cv)):
            raise ValueError("c must be finite")
        if not np.any(cv != 0):
            raise ValueError("c must have at least one non-zero entry")
        mean = self._theta_mean @ cv
        var = self._theta_within @ cv**2 + (self._shrink @ cv) ** 2 * self._v_mu
        return NormalMixture(self._weights, mean, np.sqrt(np.maximum(var, 0.0)))


def _validate(y, se) -> tuple[np.ndarray, np.ndarray]:
    y = _as_1d("y", y)
    se = _as_1d("se", se)
    if y.size == 0:
        raise ValueError("need at least one study (k >= 1); y is empty")
    if y.size != se.size:
        raise ValueError(f"y and se must have the same length, got {y.size} and {se.size}")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ValueError(f"y must be finite; not finite at position(s) {bad.tolist()}")
    bad = np.flatnonzero(~np.isfinite(se) | ~(se > 0))
    if bad.size:
        raise ValueError(f"se must be positive and finite; bad at position(s) {bad.tolist()}")
    return y, se


def _log_marginal(tau: np.ndarray, y: np.ndarray, s2: np.ndarray, m0: float, w0: float):
    """Per-node ``log L(tau)`` and the conditional quantities (``tau`` grid of shape ``(n,)``)."""
    t2 = (tau**2)[:, None]
    v = s2[None, :] + t2
    w = 1.0 / v
    big_w = w.sum(axis=1) + w0
    mu_hat = (w @ y + w0 * m0) / big_w
    resid = y[None, :] - mu_hat[:, None]
    quad = np.einsum("ij,ij->i", w, resid**2) + w0 * (m0 - mu_hat) ** 2
    loglik = -0.5 * np.log(v).sum(axis=1) - 0.5 * np.log(big_w) - 0.5 * quad
    return loglik, v, mu_hat, 1.0 / big_w


def _log_integrand(u: np.ndarray, scale: float, tau_prior, y, s2, m0, w0):
    """``log[p(tau) L(tau) dtau/du]`` at ``tau = scale * sinh(u)``."""
    tau = scale * np.sinh(u)
    log_jac = math.log(scale) + u + np.log1p(np.exp(-2.0 * u)) - math.log(2.0)  # log(scale cosh u)
    with np.errstate(divide="ignore"):
        logp = tau_prior.logpdf(tau)
    loglik, *rest = _log_marginal(tau, y, s2, m0, w0)
    out = logp + log_jac + loglik
    return np.where(np.isfinite(out), out, -np.inf), tau, loglik, rest


def nnhm_exact(
    y: Sequence[float] | np.ndarray,
    se: Sequence[float] | np.ndarray,
    *,
    mu_prior: NormalPrior | None,
    tau_prior: HalfNormalPrior | HalfCauchyPrior | TurnerPrior,
    n_grid: int = 4000,
) -> NNHMExact:
    r"""Exact posterior of the NNHM ``y_i ~ N(theta_i, se_i^2)``, ``theta_i ~ N(mu, tau^2)``.

    ``mu_prior`` is a :class:`~harmoni_bayes.priors.NormalPrior` ``N(m0, v0)`` (entering as a
    pseudo-study with weight ``1/v0`` and no ``tau``) or ``None`` for a flat, improper prior;
    ``tau_prior`` is any ``TauPrior``.  ``p(tau | y) ∝ p(tau) L(tau)`` is evaluated on
    ``n_grid`` nodes ``tau_j = c sinh(u_j)`` (midpoint rule in ``u``, see the module docstring)
    and every other marginal is the mixture over those nodes of its normal conditional.
    Works for any ``k >= 1`` (with ``k = 1`` and a flat ``mu`` prior ``tau`` follows its prior).
    """
    y, se = _validate(y, se)
    if isinstance(n_grid, bool) or not isinstance(n_grid, int | np.integer) or n_grid < 50:
        raise ValueError(f"n_grid must be an integer >= 50, got {n_grid!r}")
    n_grid = int(n_grid)
    if mu_prior is not None and not isinstance(mu_prior, NormalPrior):
        raise ValueError(f"mu_prior must be a NormalPrior or None (flat), got {type(mu_prior).__name__}")
    if not isinstance(tau_prior, HalfNormalPrior | HalfCauchyPrior | TurnerPrior):
        raise ValueError(
            f"tau_prior must be a HalfNormalPrior, HalfCauchyPrior or TurnerPrior, got {type(tau_prior).__name__}"
        )
    s2 = se**2
    if mu_prior is None:
        m0, w0 = 0.0, 0.0
    else:
        m0, w0 = float(mu_prior.mu), 1.0 / float(mu_prior.sigma) ** 2

    # c: linear grid below c, logarithmic above; far below the prior's and the data's scales
    scale = float(min(tau_prior.ppf(0.01), 0.1 * se.min()))
    data_scale = float(np.ptp(y) + se.max() + (abs(m0 - y.mean()) if w0 > 0 else 0.0))
    tau_hi = max(float(tau_prior.isf(_PRIOR_TAIL)), 10.0 * data_scale)
    u_hi = math.asinh(tau_hi / scale)

    # pass 1: locate the posterior on a wide grid
    h1 = u_hi / n_grid
    u1 = (np.arange(n_grid) + 0.5) * h1
    lf1, *_ = _log_integrand(u1, scale, tau_prior, y, s2, m0, w0)
    top = lf1.max()
    if not np.isfinite(top):
        raise ValueError("the posterior of tau vanishes on the whole grid (prior and data incompatible)")
    keep = np.flatnonzero(lf1 >= top - _LOG_DENSITY_CUTOFF)
    lo = 0.0 if keep[0] == 0 else max(0.0, u1[keep[0]] - 1.5 * h1)
    hi = min(u_hi, u1[keep[-1]] + 1.5 * h1)

    # pass 2: n_grid midpoints where the posterior lives
    h = (hi - lo) / n_grid
    u = lo + (np.arange(n_grid) + 0.5) * h
    lf, tau, _, (v, mu_hat, v_mu) = _log_integrand(u, scale, tau_prior, y, s2, m0, w0)
    wts = np.exp(lf - lf.max())
    wts /= wts.sum()

    edges = scale * np.sinh(lo + np.arange(n_grid + 1) * h)
    tau_post = GridDistribution(tau, wts, edges)

    t2 = (tau**2)[:, None]
    shrink = s2[None, :] / v  # B_i
    one_minus_b = t2 / v  # 1 - B_i, without cancellation
    theta_mean = shrink * mu_hat[:, None] + one_minus_b * y[None, :]
    theta_within = one_minus_b * s2[None, :]
    theta_var = theta_within + shrink**2 * v_mu[:, None]

    mu_post = NormalMixture(wts, mu_hat, np.sqrt(v_mu))
    theta = [NormalMixture(wts, theta_mean[:, i], np.sqrt(theta_var[:, i])) for i in range(y.size)]
    theta_new = NormalMixture(wts, mu_hat, np.sqrt(v_mu + tau**2))
    return NNHMExact(
        tau=tau_post,
        mu=mu_post,
        theta=theta,
        theta_new=theta_new,
        _weights=wts,
        _theta_mean=theta_mean,
        _theta_within=theta_within,
        _shrink=shrink,
        _v_mu=v_mu,
    )
