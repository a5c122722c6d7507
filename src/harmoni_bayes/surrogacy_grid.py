r"""Exact (grid) engine for the one-line PFS -> OS surrogacy model (issue 14).

The model (:mod:`harmoni_bayes.models.surrogacy`; Bujkiewicz et al. 2016 product-normal form) with the true
effects integrated out: for each comparison ``i``, with ``A_i = tau^2 + s_S,i^2``,
``C_i = slope tau^2 + rho_w s_S,i s_T,i`` and ``D_i = slope^2 tau^2 + psi^2 + s_T,i^2`` (``psi`` the residual
SD)::

    y_S,i                ~ N(eta, A_i)
    y_T,i | y_S,i        ~ N(a + slope eta + g_i (y_S,i - eta), V_i),    g_i = C_i / A_i,  V_i = D_i - C_i g_i

Given ``phi = (tau, slope, psi, rho_w)`` both factors are normal and *linear* in ``theta = (eta, a)`` (``eta`` the
mean true PFS log HR, ``a`` the intercept)::

    y_S,i                      = [1, 0] theta + e,               Var e = A_i
    z_i = y_T,i - g_i y_S,i    = [slope - g_i, 1] theta + e',    Var e' = V_i

so with the normal priors ``eta ~ N(m_e, s_e^2)`` and ``a ~ N(m_a, s_a^2)`` theta integrates out in closed form.
With ``X`` the design rows ``x_j``, ``R`` their variances, ``P = S0^-1 + sum_j x_j x_j^T / R_j`` and
``r = S0^-1 m0 + sum_j x_j o_j / R_j``::

    theta | phi, y ~ N(P^-1 r, P^-1)
    log p(y | phi) = -1/2 [ sum_j log(2 pi R_j) + log det S0 + log det P + m0^T S0^-1 m0 + sum_j o_j^2 / R_j
                            - r^T P^-1 r ]

(a fixed intercept ``a0`` leaves theta = eta, with ``o_j = z_j - a0``).  A comparison without an OS estimate (the
target trial before OS is reported) contributes its PFS row only.

The four remaining parameters are integrated on a grid (midpoint rule): ``tau`` and ``psi`` on linear grids that
may start at 0 (their integrands are finite and even at 0, since the likelihood depends on their squares), the
slope on a linear grid, ``rho_w`` over its uniform prior's range (one node when fixed).  Three passes, in the spirit
of the NNHM engine (:mod:`harmoni_bayes.exact`):

1. a coarse grid over the priors' ranges (out to their ``1 - 1e-9`` quantiles, or 10 for an SD whose prior reaches
   further, such as a half-Cauchy: an SD of 10 on the log-HR scale is a factor of e^20 between trials, which no
   data set here allows) finds the box where the log density comes within ``e^-30`` of its maximum;
2. as many nodes over that box find, per parameter, the range holding all but ``1e-10`` of its marginal mass;
3. the fine grid (:data:`FINE`) spans those ranges.

Node weights ``p(phi_j) p(y | phi_j)`` (times the cell volume, equal for all nodes) are normalised to one.  The
result keeps the heaviest nodes holding all but ``1e-12`` of the mass, each with the normal posterior of theta
there.  Every marginal the family reports is then a weighted sum over nodes: grid marginals for functions of phi
(refined by interpolating the log density, :meth:`SurrogacyGrid.marginal`), normal mixtures for quantities linear
in theta.  Against a grid four times finer in every direction the shipped forecast's quantiles agree to about
``1e-4`` (slope, residual SD, OS HR) and its probabilities to ``1e-4`` (``tests/test_surrogacy_grid.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .priors import FixedValue, NormalPrior, UniformPrior

__all__ = ["AXES", "SurrogacyGrid", "surrogacy_grid"]

AXES = ("tau_pfs", "slope", "residual_sd", "rho_w")
"""The grid's parameters, in axis order."""
FINE = (24, 36, 24, 8)
"""Nodes per axis of the fine grid (``rho_w``: when it has a uniform prior)."""
_COARSE = (20, 32, 20, 6)
_CUT = 30.0  # the fine box: where the coarse log density is within e^-30 of its maximum
_TAIL_MASS = 1e-10  # the fine box leaves out at most this much of each marginal's mass
_DROP = 1e-12  # the lightest nodes, together holding at most this much mass, are dropped
_PRIOR_TAIL = 1e-9
_SD_CAP = 10.0  # the coarse grid of an SD ends at its prior's 1 - 1e-9 quantile, or here if that is further


@dataclass(frozen=True)
class SurrogacyGrid:
    """The grid posterior: live nodes, their weights, and theta's normal posterior at each.

    ``nodes[name]``: the value of each grid parameter (:data:`AXES`) at each live node, shape ``(n,)``;
    ``weights``: posterior probability of each node (sums to one); ``theta_mean`` ``(n, 2)`` and ``theta_cov``
    ``(n, 2, 2)``: the posterior of (eta_pfs, intercept) given the node (a fixed intercept has variance 0);
    ``axes[name]``: ``(values, edges)`` of each fine axis, and ``index[name]`` each live node's position on it,
    for exact marginals of one parameter.
    """

    nodes: dict[str, np.ndarray]
    weights: np.ndarray
    theta_mean: np.ndarray
    theta_cov: np.ndarray
    axes: dict[str, tuple[np.ndarray, np.ndarray]]
    index: dict[str, np.ndarray]

    def marginal(self, name: str, refine: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(values, weights, edges)`` of one grid parameter's marginal posterior on its axis.

        ``refine > 1`` splits each cell into ``refine`` cells, with the log density interpolated between the
        nodes by a cubic through the four nearest (mirrored about 0 for an SD whose axis starts there: its density
        is even in the SD).  The marginal density is smooth, so this brings the quantiles of a piecewise-constant
        density much closer to the exact ones at no cost (:func:`_refined`).
        """
        values, edges = self.axes[name]
        w = np.bincount(self.index[name], weights=self.weights, minlength=values.size)
        if refine <= 1 or values.size < 4:
            return values, w, edges
        return _refined(values, w, edges, refine, mirror=edges[0] == 0.0)


def _refined(
    values: np.ndarray, w: np.ndarray, edges: np.ndarray, refine: int, *, mirror: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The marginal on a grid ``refine`` times finer: its log density interpolated by local cubics."""
    h = float(edges[1] - edges[0])
    f = np.log(np.maximum(w, 1e-300) / h)
    left = [f[1], f[0]] if mirror else [3 * f[0] - 2 * f[1], 2 * f[0] - f[1]]
    right = [2 * f[-1] - f[-2], 3 * f[-1] - 2 * f[-2]]
    padded = np.concatenate([left, f, right])
    fine_edges = np.linspace(edges[0], edges[-1], values.size * refine + 1)
    x = 0.5 * (fine_edges[1:] + fine_edges[:-1])
    pos = (x - values[0]) / h + 2.0  # position in ``padded``
    i = np.clip(np.floor(pos).astype(int), 1, padded.size - 3)
    t = pos - i
    p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
    # Lagrange cubic through (-1, p0), (0, p1), (1, p2), (2, p3), evaluated at t
    logf = (
        -p0 * t * (t - 1) * (t - 2) / 6
        + p1 * (t + 1) * (t - 1) * (t - 2) / 2
        - p2 * (t + 1) * t * (t - 2) / 2
        + p3 * (t + 1) * t * (t - 1) / 6
    )
    fw = np.exp(logf - logf.max())
    return x, fw / fw.sum(), fine_edges


@dataclass(frozen=True)
class _Rows:
    y_s: np.ndarray
    s_s: np.ndarray
    y_t: np.ndarray  # 0 where there is no OS estimate (masked)
    s_t: np.ndarray  # 1 where there is no OS estimate (masked)
    has_os: np.ndarray


@dataclass(frozen=True)
class _Priors:
    eta: NormalPrior
    intercept: NormalPrior | FixedValue
    slope: NormalPrior
    tau: Any
    psi: Any
    rho: UniformPrior | FixedValue


def _rows(y_s, s_s, y_t, s_t) -> _Rows:
    y_s, s_s = np.asarray(y_s, float), np.asarray(s_s, float)
    y_t, s_t = np.asarray(y_t, float), np.asarray(s_t, float)
    has_os = np.isfinite(y_t) & np.isfinite(s_t)
    return _Rows(y_s, s_s, np.where(has_os, y_t, 0.0), np.where(has_os, s_t, 1.0), has_os)


def _normal_logpdf(x: np.ndarray, prior: NormalPrior) -> np.ndarray:
    return -0.5 * ((x - prior.mu) / prior.sigma) ** 2 - math.log(prior.sigma)


def _log_evidence(tau, slope, psi, rho, rows: _Rows, pr: _Priors, with_theta: bool = False):
    """``log p(y | phi) + n/2 log(2 pi)`` (``n`` observed estimates: the constant is dropped) on the product grid of
    the four axes (shape ``(T, B, P, R)``, the order of
    :data:`AXES`), and theta's posterior mean ``(..., 2)`` and covariance ``(..., 2, 2)`` there if asked.

    Work follows what each term depends on: the PFS rows on tau alone; ``g``, ``x`` and ``z`` of the OS rows on
    (tau, slope, rho); only ``V = V0 + psi^2`` needs all four, and its sums over rows are one batched matrix
    product per tau (``sum_i u_i [x_i^2, x_i, 1, x_i z_i, z_i, z_i^2]`` with ``u = 1/V``).
    """
    shape = (tau.size, slope.size, psi.size, rho.size)
    out = np.empty(shape)
    mean = np.zeros((*shape, 2)) if with_theta else None
    cov = np.zeros((*shape, 2, 2)) if with_theta else None
    fixed = isinstance(pr.intercept, FixedValue)
    a0 = pr.intercept.value if isinstance(pr.intercept, FixedValue) else 0.0
    pe, me = 1.0 / pr.eta.sigma**2, pr.eta.mu
    pa, ma = (0.0, 0.0) if isinstance(pr.intercept, FixedValue) else (1.0 / pr.intercept.sigma**2, pr.intercept.mu)
    o = rows.has_os
    y_s, ys_o, yt_o = rows.y_s, rows.y_s[o], rows.y_t[o]
    ss2, st2, sst = rows.s_s**2, rows.s_t[o] ** 2, rows.s_s[o] * rows.s_t[o]
    b = slope[:, None, None]  # (B, 1, 1) against (B, R, K_os)
    psi2 = (psi**2)[None, :, None, None]  # (1, P, 1, 1) against (B, P, R, K_os)
    log_s0 = -math.log(pe) - (0.0 if fixed else math.log(pa))
    for i, t in enumerate(tau):
        t2 = t * t
        a_ = t2 + ss2
        inv_a = 1.0 / a_
        # PFS rows: functions of tau alone
        pfs = (inv_a.sum(), inv_a @ y_s, inv_a @ y_s**2, np.log(a_).sum())
        # OS rows given (slope, rho): (B, R, K_os)
        c = b * t2 + rho[None, :, None] * sst
        g = c / (t2 + ss2[o])
        v0 = b**2 * t2 + st2 - c * g
        x = b - g
        z = yt_o - g * ys_o - a0
        feats = np.stack([x * x, x, np.ones_like(x), x * z, z, z * z], axis=-1)  # (B, R, K_os, 6)
        v = v0[:, None, :, :] + psi2  # (B, P, R, K_os)
        sums = np.matmul((1.0 / v)[..., None, :], feats[:, None])[..., 0, :]  # (B, P, R, 6)
        sxx, sx, su, sxz, sz, szz = np.moveaxis(sums, -1, 0)
        log_r = pfs[3] + np.log(v).sum(axis=-1)
        p11 = pe + pfs[0] + sxx
        r1 = pe * me + pfs[1] + sxz
        quad_obs = pe * me**2 + pfs[2] + szz
        if fixed:
            log_det = np.log(p11)
            quad_fit = r1**2 / p11
        else:
            p12, p22, r2 = sx, pa + su, pa * ma + sz
            quad_obs = quad_obs + pa * ma**2
            det = p11 * p22 - p12**2
            log_det = np.log(det)
            quad_fit = (p22 * r1**2 - 2 * p12 * r1 * r2 + p11 * r2**2) / det
        out[i] = -0.5 * (log_r + log_s0 + log_det + quad_obs - quad_fit)
        if mean is not None and cov is not None:
            if fixed:
                mean[i, ..., 0], mean[i, ..., 1] = r1 / p11, a0
                cov[i, ..., 0, 0] = 1.0 / p11
            else:
                mean[i, ..., 0] = (p22 * r1 - p12 * r2) / det
                mean[i, ..., 1] = (p11 * r2 - p12 * r1) / det
                cov[i, ..., 0, 0] = p22 / det
                cov[i, ..., 0, 1] = cov[i, ..., 1, 0] = -p12 / det
                cov[i, ..., 1, 1] = p11 / det
    return out, mean, cov


def _axis(lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(lo, hi, n + 1)
    return 0.5 * (edges[1:] + edges[:-1]), edges


def _evaluate(axes: dict[str, tuple[np.ndarray, np.ndarray]], rows: _Rows, pr: _Priors, with_theta: bool = False):
    """The log posterior density (unnormalised) on the product grid, shape ``(T, B, P, R)``; theta's too if asked."""
    t, b, p, r = (axes[a][0] for a in AXES)
    log_like, mean, cov = _log_evidence(t, b, p, r, rows, pr, with_theta)
    log_prior = (
        np.asarray(pr.tau.logpdf(t), float)[:, None, None, None]
        + _normal_logpdf(b, pr.slope)[None, :, None, None]
        + np.asarray(pr.psi.logpdf(p), float)[None, None, :, None]
    )
    logp = log_prior + log_like
    return np.where(np.isfinite(logp), logp, -np.inf), mean, cov


def _rho_axis(prior: UniformPrior | FixedValue, n: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(prior, FixedValue):
        return np.array([prior.value]), np.array([prior.value, prior.value])
    return _axis(prior.lower, prior.upper, n)


def _box(axis: tuple[np.ndarray, np.ndarray], keep: np.ndarray, floor: float | None) -> tuple[float, float]:
    """The range of the cells where ``keep`` holds, one cell wider on each side (not below ``floor``)."""
    values, edges = axis
    idx = np.flatnonzero(keep)
    i, j = max(int(idx[0]) - 1, 0), min(int(idx[-1]) + 1, values.size - 1)
    lo, hi = float(edges[i]), float(edges[j + 1])
    return (max(lo, floor) if floor is not None else lo), hi


def _others(i: int) -> tuple[int, ...]:
    return tuple(j for j in range(len(AXES)) if j != i)


def _floor(name: str) -> float | None:
    return 0.0 if name in ("tau_pfs", "residual_sd") else None


def _mass_box(axis: tuple[np.ndarray, np.ndarray], mass: np.ndarray, floor: float | None) -> tuple[float, float]:
    """The range holding all but ``_TAIL_MASS`` of a marginal's mass (cells with mass; half a cell wider)."""
    values, edges = axis
    cum = np.cumsum(mass) / mass.sum()
    i = int(np.searchsorted(cum, _TAIL_MASS / 2))
    j = int(np.searchsorted(cum, 1.0 - _TAIL_MASS / 2))
    j = min(j, values.size - 1)
    half = 0.5 * (edges[1] - edges[0])
    lo, hi = float(edges[i]) - half, float(edges[j + 1]) + half
    return (max(lo, floor) if floor is not None else lo), hi


def surrogacy_grid(
    y_s: ArrayLike,
    s_s: ArrayLike,
    y_t: ArrayLike,
    s_t: ArrayLike,
    *,
    eta: NormalPrior,
    intercept: NormalPrior | FixedValue,
    slope: NormalPrior,
    tau: Any,
    residual_sd: Any,
    rho_w: UniformPrior | FixedValue,
    fine: tuple[int, int, int, int] = FINE,
) -> SurrogacyGrid:
    """The grid posterior of the one-line surrogacy model (module docstring).

    Rows are comparisons (the reference comparisons, then the target trial if any); a NaN OS estimate or SE marks
    a row with a PFS estimate only.  ``tau`` and ``residual_sd`` are heterogeneity-SD priors
    (:data:`~harmoni_bayes.priors.TauPrior`), ``rho_w`` a uniform prior or a fixed value.
    """
    rows = _rows(y_s, s_s, y_t, s_t)
    pr = _Priors(eta, intercept, slope, tau, residual_sd, rho_w)
    # Pass 1: coarse, over the priors' ranges; the box where the log density is within e^-30 of its maximum.
    coarse = {
        "tau_pfs": _axis(0.0, min(float(tau.isf(_PRIOR_TAIL)), _SD_CAP), _COARSE[0]),
        "slope": _axis(slope.mu - 6.1 * slope.sigma, slope.mu + 6.1 * slope.sigma, _COARSE[1]),
        "residual_sd": _axis(0.0, min(float(residual_sd.isf(_PRIOR_TAIL)), _SD_CAP), _COARSE[2]),
        "rho_w": _rho_axis(rho_w, _COARSE[3]),
    }
    logp = _evaluate(coarse, rows, pr)[0]
    keep = logp > logp.max() - _CUT
    axes = {
        a: _axis(*_box(coarse[a], keep.any(axis=_others(i)), _floor(a)), _COARSE[i]) for i, a in enumerate(AXES[:3])
    }
    axes["rho_w"] = coarse["rho_w"]
    # Pass 2: the same number of nodes over that box; the box holding all but 1e-10 of each marginal's mass.
    logp = _evaluate(axes, rows, pr)[0]
    w = np.exp(logp - logp.max())
    box = {a: _mass_box(axes[a], w.sum(axis=_others(i)), _floor(a)) for i, a in enumerate(AXES[:3])}
    # Pass 3: fine, over the tight box.
    axes = {a: _axis(*box[a], fine[i]) for i, a in enumerate(AXES[:3])}
    axes["rho_w"] = _rho_axis(rho_w, fine[3])
    logp, mean, cov = _evaluate(axes, rows, pr, with_theta=True)
    assert mean is not None and cov is not None
    logp = logp.ravel()
    w = np.exp(logp - logp.max())
    w /= w.sum()
    # Keep the heaviest nodes holding all but _DROP of the mass: every mixture below costs time per node.
    order = np.argsort(w)
    live = np.sort(order[np.cumsum(w[order]) > _DROP])
    w = w[live] / w[live].sum()
    mesh = np.meshgrid(*(axes[a][0] for a in AXES), indexing="ij")
    nodes = {a: m.ravel()[live] for a, m in zip(AXES, mesh, strict=True)}
    mean, cov = mean.reshape(-1, 2)[live], cov.reshape(-1, 2, 2)[live]
    shape = tuple(axes[a][0].size for a in AXES)
    position = np.unravel_index(live, shape)
    return SurrogacyGrid(
        nodes=nodes,
        weights=w,
        theta_mean=mean,
        theta_cov=cov,
        axes=axes,
        index={a: position[i] for i, a in enumerate(AXES)},
    )
