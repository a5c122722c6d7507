r"""Contrast-based network meta-analysis (NMA): the linear algebra, with numpy only (no PyMC).

Notation (log-HR scale, ``theta = log HR``, below 0 favours the first-named treatment)
-------------------------------------------------------------------------------------
Treatments ``0..K-1`` with the reference ``r``; the *basic parameters* are ``d_t`` = log HR of treatment
``t`` vs ``r`` for every ``t != r`` (``d_r = 0``), a vector of length ``p = K - 1``.  Study ``i`` with arms
``b_i`` (its baseline) and ``a_1..a_{k_i - 1}`` reports ``k_i - 1`` contrasts ``y_ij`` = log HR of ``a_j`` vs
``b_i`` with standard errors ``s_ij``.  Stacking all ``m`` contrasts:

    y = X d + tau L_C z + e,     e ~ N(0, S),     z ~ N(0, I_m)            (random effects, non-centred)
    y = X d + e                                                            (fixed effect, tau = 0)

* ``X`` (``m x p``): row ``ij`` has ``+1`` in the column of ``a_j`` and ``-1`` in the column of ``b_i``
  (the reference has no column), so ``(X d)_ij = d_{a_j} - d_{b_i}`` (consistency).
* ``S`` is block diagonal by study.  Within a multi-arm study two contrasts share the baseline arm, so
  ``Cov(y_ij, y_il) = v_{b_i}``, the variance of the baseline arm's log hazard, and
  ``Var(y_ij) = s_ij^2``.  Where ``v_b`` is not reported it is approximated (:func:`shared_arm_variance`):
  from the arm sizes, ``v_a ∝ 1/n_a`` (events proportional to patients), so ``s_ij^2 = v_{a_j} + v_b``
  gives ``v_b ≈ s_ij^2 n_{a_j} / (n_{a_j} + n_b)``, averaged over ``j``; without arm sizes, equal arm
  information, ``v_b ≈ s_ij^2 / 2`` averaged over ``j`` (the usual correlation 0.5).  Either is capped
  at ``0.9 min_j s_ij^2`` so that ``S`` stays positive definite.
* ``C`` (the random-effects structure) is block diagonal with 1 on the diagonal and 1/2 between two
  contrasts of one study (homogeneous between-study variance ``tau^2`` for every contrast, plus
  consistency: ``Var(delta_aj - delta_al) = tau^2``).  ``L_C`` is its Cholesky factor.

Prior ``d ~ N(m_0, P_0^{-1})`` with ``P_0 = I / sigma_0^2`` (``P_0 = 0``: flat).  Given ``tau``,
``V = S + tau^2 C`` and everything is normal (generalised least squares, GLS):

    A(tau) = X' V^{-1} X + P_0,     b(tau) = X' V^{-1} y + P_0 m_0
    d | tau, y ~ N(A^{-1} b, A^{-1})
    log p(y | tau) = -1/2 log|V| - 1/2 log|A| + 1/2 log|P_0| - 1/2 (y' V^{-1} y + m_0' P_0 m_0 - b' A^{-1} b) + const

With a flat prior and ``tau = 0`` the posterior mean is the GLS estimate ``(X' S^{-1} X)^{-1} X' S^{-1} y``
and the covariance ``(X' S^{-1} X)^{-1}``: the fixed-effect NMA is exact in closed form.  With random
effects, ``p(tau | y) ∝ p(tau) p(y | tau)`` is evaluated on a grid (``tau = c sinh(u)``, midpoint rule in
``u``, two passes, as :mod:`harmoni_bayes.exact` does for the NNHM), and every linear function ``c' d`` has
a normal-mixture posterior over the grid.

Connectivity: the treatments form a graph with an edge for every contrast; :func:`components` returns its
connected components (union-find).  A disconnected network has no estimate between components.

Node splitting (Dias et al. 2010, back-calculation form): for a pair ``(a, b)`` compared directly only in
two-arm studies and still connected without them, the direct estimate (inverse-variance mean of those
studies, variances ``s^2 + tau^2``) and the indirect estimate (the network without them, GLS) are
independent given ``tau``; their difference ``omega = direct - indirect`` is ``N(m_D - m_I, v_D + v_I)``
given ``tau``.  ``omega`` near 0 means the loop is consistent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ModelError, Problem

__all__ = [
    "NMAInputs",
    "NMAPosterior",
    "NodeSplit",
    "components",
    "gls",
    "nma_posterior",
    "node_splits",
    "rank_draws",
    "shared_arm_variance",
    "splittable_pairs",
]

_LOG_DENSITY_CUTOFF = 40.0
_PRIOR_TAIL = 1e-12
_SHARED_CAP = 0.9  # v_b <= 0.9 min s^2 keeps each multi-arm block positive definite


# ---------------------------------------------------------------------------------------------
# connectivity
# ---------------------------------------------------------------------------------------------


def components(treatments: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Connected components of the treatment graph (union-find), largest first, names sorted within.

    Parameters
    ----------
    treatments
        Every node, including any without an edge (it forms a component of its own).
    edges
        Pairs of treatments compared in some study.
    """
    parent = {t: t for t in treatments}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        for t in (a, b):
            parent.setdefault(t, t)
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    groups: dict[str, list[str]] = {}
    for t in parent:
        groups.setdefault(find(t), []).append(t)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g))


def describe_components(comps: Sequence[Sequence[str]]) -> str:
    """``{a, b} | {c, d, e}``: the components in words, for error messages."""
    return " | ".join("{" + ", ".join(c) + "}" for c in comps)


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------


def shared_arm_variance(
    se: Sequence[float], n_arms: Sequence[float] | None = None, n_base: float | None = None
) -> float:
    r"""Approximate variance of a multi-arm study's shared (baseline) arm from its contrasts' SEs.

    With arm sizes: ``v_b = mean_j s_j^2 n_j / (n_j + n_b)`` (arm variances proportional to ``1/n``); without:
    ``v_b = mean_j s_j^2 / 2`` (equal arm information).  Capped at ``0.9 min_j s_j^2``, so that the study's
    covariance matrix ``diag(s_j^2 - v_b) + v_b 1 1'`` is positive definite.
    """
    s2 = np.asarray(se, dtype=float) ** 2
    if n_arms is not None and n_base is not None and np.all(np.isfinite(n_arms)) and np.isfinite(n_base):
        n = np.asarray(n_arms, dtype=float)
        v = float(np.mean(s2 * n / (n + float(n_base))))
    else:
        v = float(np.mean(s2 / 2.0))
    return min(v, _SHARED_CAP * float(s2.min()))


@dataclass(frozen=True, eq=False)
class NMAInputs:
    """A validated network of contrasts (see the module docstring for the notation).

    Build it with :meth:`from_contrasts`.  Contrast rows are ordered by study; within a study every contrast
    compares one arm with the study's baseline arm ``treat_b``.  ``treatments`` lists the reference first,
    then the others in the order of the basic parameters (``X``'s columns).
    """

    treatments: tuple[str, ...]
    reference: str
    study: tuple[str, ...]
    treat_a: tuple[str, ...]
    treat_b: tuple[str, ...]
    y: np.ndarray
    se: np.ndarray
    cov: np.ndarray
    re_structure: np.ndarray
    design: np.ndarray
    shared: dict[str, tuple[float, str]] = field(default_factory=dict)
    """Multi-arm studies: the baseline arm's variance used, and how it was obtained."""

    @property
    def others(self) -> tuple[str, ...]:
        """The non-reference treatments, in the order of the basic parameters ``d``."""
        return self.treatments[1:]

    @property
    def studies(self) -> list[str]:
        """Study labels, each once, in order."""
        return list(dict.fromkeys(self.study))

    @property
    def m(self) -> int:
        """Number of contrasts."""
        return len(self.y)

    @property
    def p(self) -> int:
        """Number of basic parameters (treatments minus one)."""
        return len(self.treatments) - 1

    @property
    def multi_arm(self) -> list[str]:
        """Studies with more than two arms."""
        return list(self.shared)

    def contrast_vector(self, a: str, b: str) -> np.ndarray:
        """``c`` with ``c' d = d_a - d_b`` (the log HR of ``a`` vs ``b``)."""
        c = np.zeros(self.p)
        for t, sign in ((a, 1.0), (b, -1.0)):
            if t != self.reference:
                c[self.others.index(t)] += sign
        return c

    def edges(self) -> list[tuple[str, str]]:
        """Every compared pair (unordered, as sorted tuples), each once."""
        return sorted({tuple(sorted(p)) for p in zip(self.treat_a, self.treat_b, strict=True)})  # type: ignore[misc]

    def whitened(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(L_S^{-1} y, L_S^{-1} X, L_S^{-1} L_C)``, ``S = L_S L_S'``: the likelihood as independent unit normals."""
        ls = np.linalg.cholesky(self.cov)
        lc = np.linalg.cholesky(self.re_structure)
        inv = np.linalg.solve(ls, np.eye(self.m))
        return inv @ self.y, inv @ self.design, inv @ lc

    @classmethod
    def from_contrasts(
        cls,
        study: Sequence[str],
        treat_a: Sequence[str],
        treat_b: Sequence[str],
        estimate: Sequence[float],
        se: Sequence[float],
        *,
        reference: str | None = None,
        n_a: Sequence[float] | None = None,
        n_b: Sequence[float] | None = None,
        shared_variance: dict[str, float] | None = None,
    ) -> NMAInputs:
        r"""A network from a table of contrasts: one row per contrast (any effect measure on a log scale).

        Parameters
        ----------
        study, treat_a, treat_b, estimate, se
            Per contrast: its study, the two treatments, the estimate of ``theta`` (treatment ``a`` vs ``b``;
            e.g. a log HR or a log odds ratio) and its standard error.  A study with ``k`` arms gives
            ``k - 1`` contrasts that all share one arm (its baseline), e.g. ``B vs A`` and ``C vs A``.
        reference
            The reference treatment (default: the treatment in the most studies, ties alphabetical).
        n_a, n_b
            Optional arm sizes of each contrast's arms, used only to approximate the shared arm's variance
            in multi-arm studies (:func:`shared_arm_variance`).
        shared_variance
            Optional ``{study: v_b}``: the reported variance of a multi-arm study's baseline arm.

        Raises
        ------
        ModelError
            Listing every problem at once: unequal lengths, a non-finite estimate, a non-positive SE, a
            contrast of a treatment with itself, a duplicated contrast, a multi-arm study whose contrasts do
            not share one arm (no valid contrast set), a reference absent from the network, or a disconnected
            network (naming its components).
        """
        cols = [
            list(study),
            list(treat_a),
            list(treat_b),
            list(np.asarray(estimate, float)),
            list(np.asarray(se, float)),
        ]
        if len({len(c) for c in cols}) != 1:
            raise ModelError(
                "contrast columns differ in length: " + ", ".join(str(len(c)) for c in cols) + " (study, a, b, est, se)"
            )
        if not cols[0]:
            raise ModelError("no contrasts: the network is empty")
        sa = np.asarray(n_a if n_a is not None else [np.nan] * len(cols[0]), dtype=float)
        sb = np.asarray(n_b if n_b is not None else [np.nan] * len(cols[0]), dtype=float)
        problems: list[Problem] = []
        rows: list[dict[str, Any]] = []
        for i, (s, a, b, y, e) in enumerate(zip(*cols, strict=True)):
            s, a, b = str(s), str(a).strip(), str(b).strip()
            where = f"contrast {i + 1} ({s}: {a} vs {b})"
            if not a or not b:
                problems.append(Problem(f"{where}: a treatment name is blank"))
            elif a == b:
                problems.append(Problem(f"{where}: compares a treatment with itself"))
            if not math.isfinite(y):
                problems.append(Problem(f"{where}: estimate is not a finite number ({y})"))
            if not (math.isfinite(e) and e > 0):
                problems.append(Problem(f"{where}: standard error must be positive and finite ({e})"))
            rows.append({"study": s, "a": a, "b": b, "y": y, "se": e, "na": sa[i], "nb": sb[i], "where": where})
        seen: dict[tuple[str, frozenset[str]], str] = {}
        for r in rows:
            key = (r["study"], frozenset((r["a"], r["b"])))
            if key in seen:
                problems.append(Problem(f"{r['where']}: duplicated contrast (also {seen[key]})"))
            else:
                seen[key] = r["where"]
        if problems:
            raise ModelError("the contrasts do not form a valid network", problems)

        ordered: list[dict[str, Any]] = []
        shared: dict[str, tuple[float, str]] = {}
        blocks: list[tuple[int, float]] = []
        by_study: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_study.setdefault(r["study"], []).append(r)
        for s, rs in by_study.items():
            arms = {t for r in rs for t in (r["a"], r["b"])}
            base = _common_arm(rs)
            if len(rs) != len(arms) - 1 or base is None:
                listed = "; ".join(f"{r['a']} vs {r['b']}" for r in rs)
                problems.append(
                    Problem(
                        f"study {s}: its arms form no valid contrast set ({len(arms)} arms, {len(rs)} contrasts: "
                        f"{listed}); a study with k arms needs k - 1 contrasts that all share one arm"
                    )
                )
                continue
            oriented = []
            for r in rs:  # orient every contrast as (arm vs the study's baseline)
                if r["a"] == base:
                    r = r | {"a": r["b"], "b": base, "y": -r["y"], "na": r["nb"], "nb": r["na"]}
                oriented.append(r)
            v_b = math.nan
            if len(oriented) > 1:
                if shared_variance and s in shared_variance:
                    v_b, how = float(shared_variance[s]), "reported"
                    smin = min(r["se"] for r in oriented) ** 2
                    if not 0 <= v_b < smin:
                        problems.append(
                            Problem(f"study {s}: shared-arm variance {v_b:g} must be in [0, {smin:.4g}) (min SE^2)")
                        )
                else:
                    nb = oriented[0]["nb"]
                    na = [r["na"] for r in oriented]
                    with_sizes = bool(np.isfinite(nb) and np.all(np.isfinite(na)))
                    v_b = shared_arm_variance([r["se"] for r in oriented], na if with_sizes else None, nb)
                    how = "from arm sizes (arm variance ∝ 1/n)" if with_sizes else "equal arm information (corr 0.5)"
                shared[s] = (v_b, how)
            blocks.append((len(oriented), v_b))
            ordered += oriented
        if problems:
            raise ModelError("the contrasts do not form a valid network", problems)

        edges = [(r["a"], r["b"]) for r in ordered]
        names = sorted({t for e in edges for t in e})
        if reference is None:
            count = {t: sum(1 for rs in by_study.values() if any(t in (r["a"], r["b"]) for r in rs)) for t in names}
            reference = min(names, key=lambda t: (-count[t], t))
        if reference not in names:
            raise ModelError(
                f"reference treatment {reference!r} is not in the network; its treatments are: {', '.join(names)}"
            )
        comps = components(names, edges)
        if len(comps) > 1:
            raise ModelError(
                f"the network is disconnected: {len(comps)} components {describe_components(comps)}; "
                "treatments in different components cannot be compared"
            )
        treatments = (reference, *[t for t in names if t != reference])
        m, p = len(ordered), len(treatments) - 1
        col = {t: j for j, t in enumerate(treatments[1:])}
        design = np.zeros((m, p))
        for i, r in enumerate(ordered):
            if r["a"] in col:
                design[i, col[r["a"]]] += 1.0
            if r["b"] in col:
                design[i, col[r["b"]]] -= 1.0
        se_arr = np.array([r["se"] for r in ordered])
        cov = np.diag(se_arr**2)
        re = np.eye(m)
        at = 0
        for k, v_b in blocks:
            if k > 1:
                sl = slice(at, at + k)
                cov[sl, sl] += v_b * (1.0 - np.eye(k))
                re[sl, sl] += 0.5 * (1.0 - np.eye(k))
            at += k
        return cls(
            treatments=treatments,
            reference=reference,
            study=tuple(r["study"] for r in ordered),
            treat_a=tuple(r["a"] for r in ordered),
            treat_b=tuple(r["b"] for r in ordered),
            y=_readonly(np.array([r["y"] for r in ordered])),
            se=_readonly(se_arr),
            cov=_readonly(cov),
            re_structure=_readonly(re),
            design=_readonly(design),
            shared=shared,
        )


def _common_arm(rows: list[dict[str, Any]]) -> str | None:
    """The arm every contrast of a study involves (its baseline), or None.  Two-arm studies keep their control."""
    if len(rows) == 1:
        return str(rows[0]["b"])
    common = set.intersection(*({r["a"], r["b"]} for r in rows))
    return sorted(common)[0] if len(common) == 1 else None


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float, copy=True)
    a.flags.writeable = False
    return a


# ---------------------------------------------------------------------------------------------
# GLS given tau, and the tau grid
# ---------------------------------------------------------------------------------------------


def gls(
    y: np.ndarray,
    design: np.ndarray,
    cov: np.ndarray,
    prior_mean: np.ndarray | None = None,
    prior_precision: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""GLS / conjugate-normal posterior of ``d`` for ``y ~ N(X d, V)``, batched over leading axes of ``cov``.

    Returns ``(mean, covariance, log marginal likelihood)``: ``A = X' V^{-1} X + P_0``,
    ``mean = A^{-1}(X' V^{-1} y + P_0 m_0)``, ``covariance = A^{-1}`` and
    ``log p(y) = -1/2 [log|V| + log|A| - log|P_0| + y'V^{-1}y + m_0'P_0 m_0 - b'A^{-1}b + m log 2 pi]``
    (for a flat prior, ``P_0 = 0``, without the ``P_0`` terms: defined up to a constant).
    """
    cov = np.asarray(cov, dtype=float)
    m, p = design.shape
    rhs = np.concatenate([design, y[:, None]], axis=1)
    sol = np.linalg.solve(cov, np.broadcast_to(rhs, cov.shape[:-2] + rhs.shape))
    vinv_x, vinv_y = sol[..., :p], sol[..., p]
    a = np.einsum("mp,...mq->...pq", design, vinv_x)
    b = np.einsum("mp,...m->...p", design, vinv_y)
    yvy = np.einsum("m,...m->...", y, vinv_y)
    const = 0.0
    if prior_precision is not None:
        m0 = np.zeros(p) if prior_mean is None else np.asarray(prior_mean, dtype=float)
        a = a + prior_precision
        b = b + prior_precision @ m0
        const = float(m0 @ prior_precision @ m0) - float(np.linalg.slogdet(prior_precision)[1])
    mean = np.linalg.solve(a, b[..., None])[..., 0]
    post_cov = np.linalg.inv(a)
    post_cov = 0.5 * (post_cov + np.swapaxes(post_cov, -1, -2))
    logdet_v = np.linalg.slogdet(cov)[1]
    logdet_a = np.linalg.slogdet(a)[1]
    quad = yvy + const - np.einsum("...p,...p->...", b, mean)
    loglik = -0.5 * (logdet_v + logdet_a + quad + m * math.log(2 * math.pi))
    return mean, post_cov, loglik


@dataclass(frozen=True, eq=False)
class NMAPosterior:
    r"""The exact posterior: a mixture over ``tau`` grid nodes of normal posteriors of ``d``.

    ``tau`` (``n``), ``edges`` (``n + 1``, the grid cells), ``weights`` (``n``, summing to one),
    ``means`` (``n x p``) and ``covs`` (``n x p x p``): ``d | tau_j, y ~ N(means_j, covs_j)``.  A fixed-effect
    posterior has one node at ``tau = 0``.
    """

    tau: np.ndarray
    edges: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    @property
    def fixed(self) -> bool:
        """True for a fixed-effect posterior (one node, tau = 0)."""
        return self.tau.size == 1 and self.tau[0] == 0.0

    def contrast(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(weights, means, sds)`` of the normal mixture that is the posterior of ``c' d``."""
        c = np.asarray(c, dtype=float)
        var = np.einsum("p,npq,q->n", c, self.covs, c)
        return self.weights, self.means @ c, np.sqrt(np.maximum(var, 0.0))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` iid joint draws ``(tau, d)``: a grid node by its weight (tau uniform within its cell), then
        ``d ~ N(means_j, covs_j)``.
        """
        j = rng.choice(self.weights.size, size=n, p=self.weights)
        lo, hi = self.edges[j], self.edges[j + 1]
        tau = self.tau[j] if self.fixed else lo + (hi - lo) * rng.random(n)
        chol = np.linalg.cholesky(self.covs + 1e-14 * np.eye(self.covs.shape[-1]))
        z = rng.standard_normal((n, self.means.shape[1]))
        d = self.means[j] + np.einsum("npq,nq->np", chol[j], z)
        return tau, d


def nma_posterior(
    inputs: NMAInputs,
    *,
    prior_mean: float = 0.0,
    prior_sd: float | None = 2.0,
    tau_prior: Any = None,
    n_grid: int = 1500,
) -> NMAPosterior:
    r"""Exact posterior of the NMA (see the module docstring).

    Parameters
    ----------
    inputs
        The network.
    prior_mean, prior_sd
        ``d_t ~ N(prior_mean, prior_sd^2)`` independently; ``prior_sd=None`` is the flat (improper) prior,
        for which the fixed-effect posterior is the GLS estimate and its covariance.
    tau_prior
        A heterogeneity prior (:data:`harmoni_bayes.priors.TauPrior`; its ``logpdf``, ``ppf`` and ``isf`` are
        used) for random effects, or ``None`` (fixed effect).
    n_grid
        Grid nodes of the second pass (random effects).
    """
    p = inputs.p
    prec = None if prior_sd is None else np.eye(p) / float(prior_sd) ** 2
    m0 = np.full(p, float(prior_mean))
    y, x, s, c = inputs.y, inputs.design, inputs.cov, inputs.re_structure
    if tau_prior is None:
        mean, cov, _ = gls(y, x, s, m0, prec)
        return NMAPosterior(np.zeros(1), np.zeros(2), np.ones(1), mean[None, :], cov[None, :, :])

    def log_integrand(u: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        tau = scale * np.sinh(u)
        log_jac = math.log(scale) + u + np.log1p(np.exp(-2.0 * u)) - math.log(2.0)
        v = s[None, :, :] + (tau**2)[:, None, None] * c[None, :, :]
        mean, cov, loglik = gls(y, x, v, m0, prec)
        with np.errstate(divide="ignore"):
            out = tau_prior.logpdf(tau) + log_jac + loglik
        return np.where(np.isfinite(out), out, -np.inf), tau, mean, cov

    se = inputs.se
    scale = float(min(tau_prior.ppf(0.01), 0.1 * se.min()))
    data_scale = float(np.ptp(y) + se.max())
    tau_hi = max(float(tau_prior.isf(_PRIOR_TAIL)), 10.0 * data_scale)
    u_hi = math.asinh(tau_hi / scale)
    n1 = max(200, n_grid // 4)
    h1 = u_hi / n1
    u1 = (np.arange(n1) + 0.5) * h1
    lf1, *_ = log_integrand(u1, scale)
    top = lf1.max()
    if not np.isfinite(top):
        raise ModelError("the posterior of tau vanishes on the whole grid (prior and data incompatible)")
    keep = np.flatnonzero(lf1 >= top - _LOG_DENSITY_CUTOFF)
    lo = 0.0 if keep[0] == 0 else max(0.0, u1[keep[0]] - 1.5 * h1)
    hi = min(u_hi, u1[keep[-1]] + 1.5 * h1)
    h = (hi - lo) / n_grid
    u = lo + (np.arange(n_grid) + 0.5) * h
    lf, tau, mean, cov = log_integrand(u, scale)
    w = np.exp(lf - lf.max())
    w /= w.sum()
    edges = scale * np.sinh(lo + np.arange(n_grid + 1) * h)
    return NMAPosterior(tau, edges, w, mean, cov)


# ---------------------------------------------------------------------------------------------
# ranks
# ---------------------------------------------------------------------------------------------


def rank_draws(d: np.ndarray) -> np.ndarray:
    """Per-draw ranks (1 = best = lowest log HR vs the reference) of every treatment, reference first.

    ``d``: draws of the basic parameters, shape ``(..., p)``; returns integer ranks of shape ``(..., p + 1)``.
    SUCRA of a treatment is ``(K - E[rank]) / (K - 1)``: the mean over draws of ``(K - rank) / (K - 1)``.
    """
    full = np.concatenate([np.zeros((*d.shape[:-1], 1)), d], axis=-1)
    return np.argsort(np.argsort(full, axis=-1, kind="stable"), axis=-1, kind="stable") + 1


# ---------------------------------------------------------------------------------------------
# node splitting (inconsistency in closed loops)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeSplit:
    """A pair that can be split: direct evidence only from two-arm studies, connected without them."""

    a: str
    b: str
    direct: tuple[int, ...]
    """Indices of the contrasts compared directly (each oriented as stored in the inputs)."""


def splittable_pairs(inputs: NMAInputs) -> list[NodeSplit]:
    """Pairs in a closed loop that node splitting can separate (see the module docstring)."""
    out = []
    multi = set(inputs.multi_arm)
    for a, b in inputs.edges():
        idx = [i for i, pair in enumerate(zip(inputs.treat_a, inputs.treat_b, strict=True)) if set(pair) == {a, b}]
        studies = {inputs.study[i] for i in idx}
        if studies & multi:
            continue
        rest = [
            (ta, tb)
            for i, (ta, tb) in enumerate(zip(inputs.treat_a, inputs.treat_b, strict=True))
            if inputs.study[i] not in studies
        ]
        comps = components(list(inputs.treatments), rest)
        if any(a in comp and b in comp for comp in comps):
            out.append(NodeSplit(a, b, tuple(idx)))
    return out


def node_splits(
    inputs: NMAInputs, split: NodeSplit, tau: np.ndarray, prior_sd: float | None = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean and variance of ``omega = direct - indirect`` (log scale, ``a`` vs ``b``) at each ``tau``.

    Direct: ``sum w_i y_i / sum w_i`` over the split pair's studies (each oriented ``a`` vs ``b``),
    ``w_i = 1 / (s_i^2 + tau^2)``, variance ``1 / sum w_i``.  Indirect: the GLS posterior of ``d_a - d_b``
    from the other studies (prior ``N(0, prior_sd^2)`` on ``d`` so that nodes cut off by the split stay defined).
    """
    tau = np.atleast_1d(np.asarray(tau, dtype=float))
    idx = np.array(split.direct)
    sign = np.array([1.0 if inputs.treat_a[i] == split.a else -1.0 for i in idx])
    yd, s2 = sign * inputs.y[idx], inputs.se[idx] ** 2
    w = 1.0 / (s2[None, :] + tau[:, None] ** 2)
    m_d = (w @ yd) / w.sum(axis=1)
    v_d = 1.0 / w.sum(axis=1)
    keep = np.array([s not in {inputs.study[i] for i in idx} for s in inputs.study])
    y, x = inputs.y[keep], inputs.design[keep]
    s, c = inputs.cov[np.ix_(keep, keep)], inputs.re_structure[np.ix_(keep, keep)]
    v = s[None, :, :] + (tau**2)[:, None, None] * c[None, :, :]
    prec = np.eye(inputs.p) / float(prior_sd) ** 2 if prior_sd is not None else None
    mean, cov, _ = gls(y, x, v, None, prec)
    cv = inputs.contrast_vector(split.a, split.b)
    m_i = mean @ cv
    v_i = np.einsum("p,npq,q->n", cv, cov, cv)
    return m_d - m_i, v_d + v_i
