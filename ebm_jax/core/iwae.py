"""The importance-weighted lower bound on log p(x) of a noisy latent model, and AIS beside it.

The model: u ~ p(u) on R^d, x = m(u) + tau * eps with eps ~ N(0, I). Every family is one
(``evaluation/noisy_models.py``): the short-run EBM with m(u) = M(z(u)), z(u) mapping a
standard normal u onto p_0 (``unconstrained``), the generator with m = g, the latent EBM with
p(u) its normalised EBM prior. The marginal log p(x) = log E_{p(u)} p(x | u) is bounded below
by (Burda, Grosse and Salakhutdinov, 2016)

    L_S(x) = E[ log (1/S) sum_s p(u_s) p(x | u_s) / q(u_s | x) ],   u_s ~ q(. | x),

which rises with S towards log p(x). q is a Laplace approximation at the mode u* of
log p(u) + log p(x | u): N(u*, Lambda^-1) with the Gauss-Newton precision
Lambda = I + J^T J / tau^2, J = dm/du at u* (``laplace_dense``: J by forward mode, d columns a chunk at a time;
``laplace_diag``: only diag(J^T J), from Rademacher vector-Jacobian products, so no D x D or
D x d matrix is formed), or a mixture of such components at several modes. A fraction ``defensive`` of q's mass is the base N(0, I), which bounds
the weights where the posterior has modes the Laplace approximation misses.

``ais_log_marginal`` anneals from q to the posterior in q's whitened coordinates, with
``core.ais.ais_log_z``: a second estimate of log p(x), also a stochastic lower bound.

p(x | u) is a Gaussian density (``levels=None``) or, for discrete images in [-1, 1] on
``levels`` levels, the Gaussian integrated over each value's bin (``obs_log_prob``), an
exact discrete probability.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.scipy.special import log_ndtr, ndtr, ndtri

from ebm_jax.core import ais, logdet
from ebm_jax.core.prior import Prior

Array = jax.Array
LOG_2PI = math.log(2 * math.pi)


def _flat(a: Array) -> Array:
    return a.reshape(a.shape[0], -1)


def std_normal_log_prob(u_B: Array) -> Array:
    """log N(u; 0, I) per example."""
    u = _flat(u_B)
    return -0.5 * jnp.sum(u * u, axis=1) - 0.5 * u.shape[1] * LOG_2PI


def student_log_prob(w_Bd: Array, dof: float) -> Array:
    """log of the standard multivariate Student t density with ``dof`` degrees of freedom."""
    w = _flat(w_Bd)
    d = w.shape[1]
    return (jax.scipy.special.gammaln((dof + d) / 2) - jax.scipy.special.gammaln(dof / 2)
            - 0.5 * d * math.log(dof * math.pi)
            - 0.5 * (dof + d) * jnp.log1p(jnp.sum(w * w, axis=1) / dof))


def unconstrained(prior: Prior) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    """``(to_z, to_u)``: z = low + (high - low) Phi(u) for a uniform p_0 (u ~ N(0, I) gives
    z ~ p_0, and p_0 is smooth in u), z = std u for a Gaussian one; ``to_u`` inverts it,
    clipping z into the open box (a z on the boundary has an infinite u)."""
    if prior.kind == "uniform":
        lo, width = prior.low, prior.high - prior.low
        return (lambda u: lo + width * ndtr(u),
                lambda z: ndtri(jnp.clip((z - lo) / width, 1e-6, 1 - 1e-6)))
    return (lambda u: prior.std * u), (lambda z: z / prior.std)


def _log_diff_ndtr(a: Array, b: Array) -> Array:
    """log(Phi(b) - Phi(a)) for a < b, stable in both tails (reflected into the lower one)."""
    flip = (a + b) > 0
    lo, hi = jnp.where(flip, -b, a), jnp.where(flip, -a, b)
    log_hi, log_lo = log_ndtr(hi), log_ndtr(lo)
    return log_hi + jnp.log1p(-jnp.exp(jnp.minimum(log_lo - log_hi, -1e-12)))


def obs_log_prob(x_B: Array, mean_B: Array, tau, levels: int | None = None) -> Array:
    """log p(x | u) per example: the N(mean, tau^2 I) density, or with ``levels`` the
    probability of x's levels: the Gaussian integrated over each value's bin of width
    2/(levels-1) centred on it, the two end bins extended to infinity."""
    x, m = _flat(x_B), _flat(mean_B)
    if levels is None:
        r = (x - m) / tau
        return -0.5 * jnp.sum(r * r, axis=1) - x.shape[1] * (jnp.log(tau) + 0.5 * LOG_2PI)
    half = 1.0 / (levels - 1)
    a = jnp.where(x <= -1 + half / 2, -jnp.inf, (x - half - m) / tau)
    b = jnp.where(x >= 1 - half / 2, jnp.inf, (x + half - m) / tau)
    return jnp.sum(_log_diff_ndtr(a, b), axis=1)


class Proposal(NamedTuple):
    """q(u | x) = (1 - defensive) (1/M) sum_m N(mean_m, Lambda_m^-1) + defensive N(0, I), per
    example: M Laplace components (one per mode found) on a leading axis. ``chol_MBdd``: lower
    Cholesky factors L of Lambda = L L^T (dense), or None; ``prec_MBd``: the diagonal of
    Lambda (diagonal q), or None. ``dof`` > 0 makes each component a Student t with that
    many degrees of freedom (heavier tails than the Gaussian, for posteriors that are not)."""
    mean_MB: Array
    chol_MBdd: Array | None
    prec_MBd: Array | None
    defensive: float = 0.0
    dof: float = 0.0

    def stack(self, other: Proposal) -> Proposal:
        """The mixture of both proposals' components (equal weights per component)."""
        cat = lambda a, b: None if a is None else jnp.concatenate([a, b], axis=0)
        return Proposal(cat(self.mean_MB, other.mean_MB), cat(self.chol_MBdd, other.chol_MBdd),
                        cat(self.prec_MBd, other.prec_MBd), self.defensive, self.dof)

    def component(self, m: int) -> Proposal:
        take = lambda a: None if a is None else a[m:m + 1]
        return Proposal(take(self.mean_MB), take(self.chol_MBdd), take(self.prec_MBd),
                        self.defensive, self.dof)


def find_mode(log_joint: Callable[[Array], Array], u0_B: Array, *, num_iters: int = 100,
              learning_rate: float = 0.05) -> Array:
    """argmax_u log_joint(u) per example by Adam with a cosine decay, from ``u0_B``
    (examples independent: the loss is their sum)."""
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, max(int(num_iters), 1)))
    grad = jax.grad(lambda u: -jnp.sum(log_joint(u)))

    def body(carry, _):
        u, state = carry
        updates, state = tx.update(grad(u), state, u)
        return (optax.apply_updates(u, updates), state), None

    (u, _), _ = jax.lax.scan(body, (u0_B, tx.init(u0_B)), None, length=int(num_iters))
    return u


def laplace_dense(decode: Callable[[Array], Array], u_B: Array, tau, *,
                  prior_precision: float = 1.0, defensive: float = 0.0,
                  log_joint_one: Callable[[Array, Array], Array] | None = None,
                  x_B: Array | None = None, chunk_size: int = 64) -> Proposal:
    """The Laplace proposal at ``u_B``. Its precision is the Gauss-Newton Lambda =
    prior_precision I + J^T J / tau^2 with J = dm/du (D x d, by forward mode, one example at a
    time, ``chunk_size`` columns per pass: ``logdet.chunked_jacobian``); with
    ``log_joint_one(x_1, u_1) -> (1,)`` and the examples ``x_B``, the exact -Hessian of
    log p(x, u) where that is positive definite, Gauss-Newton elsewhere."""
    shape = u_B.shape[1:]
    d = math.prod(shape)

    def one(args):
        u_d, x_1 = args
        m = lambda v: decode(v.reshape((1,) + shape)).reshape(-1)
        jac = logdet.chunked_jacobian(m, u_d, chunk_size)
        lam = prior_precision * jnp.eye(d, dtype=u_d.dtype) + jac.T @ jac / tau ** 2
        chol = jnp.linalg.cholesky(lam)
        if log_joint_one is None:
            return chol
        neg_h = -jax.hessian(lambda v: log_joint_one(x_1[None], v.reshape((1,) + shape))[0])(u_d)
        chol_h = jnp.linalg.cholesky(0.5 * (neg_h + neg_h.T))
        return jnp.where(jnp.all(jnp.isfinite(chol_h)), chol_h, chol)

    xs = jnp.zeros(u_B.shape[:1]) if x_B is None else x_B
    chol = jax.lax.map(one, (_flat(u_B), xs))
    return Proposal(u_B[None], chol[None], None, defensive)


def newton_refine(log_joint: Callable[[Array], Array], decode: Callable[[Array], Array],
                  u_B: Array, tau, *, num_steps: int = 2, prior_precision: float = 1.0
                  ) -> Array:
    """Gauss-Newton steps u <- u + Lambda^-1 grad log_joint(u) (Lambda of ``laplace_dense``),
    each kept only where it raises log_joint: exact in one step for a linear m under a
    Gaussian prior, and a sharp finish after a first-order search elsewhere."""
    grad = jax.grad(lambda u: jnp.sum(log_joint(u)))
    for _ in range(int(num_steps)):
        chol = laplace_dense(decode, u_B, tau, prior_precision=prior_precision).chol_MBdd[0]
        g = _flat(grad(u_B))
        step = jax.vmap(lambda l, v: jax.scipy.linalg.cho_solve((l, True), v))(chol, g)
        u_new = u_B + step.reshape(u_B.shape)
        better = log_joint(u_new) > log_joint(u_B)
        u_B = jnp.where(better.reshape((-1,) + (1,) * (u_B.ndim - 1)), u_new, u_B)
    return u_B


def laplace_diag(decode: Callable[[Array], Array], u_B: Array, tau, key: Array, *,
                 num_probes: int = 8, prior_precision: float = 1.0,
                 defensive: float = 0.0) -> Proposal:
    """A diagonal Laplace proposal: diag(J^T J)_i = E_v[(J^T v)_i^2] over Rademacher v in data
    space, from ``num_probes`` vector-Jacobian products; no Jacobian is formed."""
    mean, vjp = jax.vjp(decode, u_B)

    def probe(p):
        v = jax.random.rademacher(jax.random.fold_in(key, p), mean.shape, mean.dtype)
        return jnp.square(vjp(v)[0])

    diag = jax.lax.map(probe, jnp.arange(int(num_probes))).mean(0)
    return Proposal(u_B[None], None, (prior_precision + _flat(diag) / tau ** 2)[None],
                    defensive)


def _whiten_maps(mean_B: Array, chol_Bdd: Array | None, prec_Bd: Array | None):
    """``(from_white, to_white, log_det)`` of one component: u = mean + A eps with
    eps ~ N(0, I), its inverse, and log|det A| per example."""
    mean = _flat(mean_B)
    if chol_Bdd is not None:
        def from_white(eps_Bd):  # A = L^-T
            return mean + jax.vmap(lambda l, e: jax.scipy.linalg.solve_triangular(
                l, e, lower=True, trans=1))(chol_Bdd, eps_Bd)
        to_white = lambda u_Bd: jnp.einsum("bji,bj->bi", chol_Bdd, u_Bd - mean)  # L^T (u - m)
        log_det = -jnp.sum(jnp.log(jnp.diagonal(chol_Bdd, axis1=1, axis2=2)), axis=1)
    else:
        scale = jax.lax.rsqrt(prec_Bd)
        from_white = lambda eps_Bd: mean + scale * eps_Bd
        to_white = lambda u_Bd: (u_Bd - mean) / scale
        log_det = jnp.sum(jnp.log(scale), axis=1)
    return from_white, to_white, log_det


def _components(q: Proposal):
    for m in range(q.mean_MB.shape[0]):
        yield _whiten_maps(q.mean_MB[m], None if q.chol_MBdd is None else q.chol_MBdd[m],
                           None if q.prec_MBd is None else q.prec_MBd[m])


def sample_proposal(q: Proposal, key: Array) -> tuple[Array, Array]:
    """One draw u_B ~ q(. | x) per example and log q(u_B | x)."""
    shape = q.mean_MB.shape[1:]
    eps = jax.random.normal(jax.random.fold_in(key, 0), (shape[0], math.prod(shape[1:])))
    if q.dof > 0:
        chi2 = 2 * jax.random.gamma(jax.random.fold_in(key, 4), q.dof / 2, shape[:1])
        eps = eps * jnp.sqrt(q.dof / chi2)[:, None]
    u_MBd = jnp.stack([from_white(eps) for from_white, _, _ in _components(q)])
    pick = jax.random.randint(jax.random.fold_in(key, 3), shape[:1], 0, u_MBd.shape[0])
    u = u_MBd[pick, jnp.arange(shape[0])]
    if q.defensive > 0:
        base = jax.random.normal(jax.random.fold_in(key, 1), u.shape, u.dtype)
        use_base = jax.random.uniform(jax.random.fold_in(key, 2), shape[:1]) < q.defensive
        u = jnp.where(use_base[:, None], base, u)
    u = u.reshape(shape)
    return u, proposal_log_prob(q, u)


def proposal_log_prob(q: Proposal, u_B: Array) -> Array:
    """log q(u | x) per example."""
    u = _flat(u_B)
    white_log_prob = std_normal_log_prob if q.dof <= 0 else (
        lambda w: student_log_prob(w, q.dof))
    log_m = jnp.stack([white_log_prob(to_white(u)) - log_det
                       for _, to_white, log_det in _components(q)])
    log_lap = ais.log_mean_exp(log_m, axis=0)
    if q.defensive <= 0:
        return log_lap
    return jnp.logaddexp(math.log1p(-q.defensive) + log_lap,
                         math.log(q.defensive) + std_normal_log_prob(u))


def log_weights(log_joint: Callable[[Array], Array], q: Proposal, key: Array,
                num_samples: int) -> Array:
    """log p(x, u_s) - log q(u_s | x) for s = 1..S, shaped (S, B); sample s is keyed
    ``fold_in(key, s)`` and the samples are drawn one at a time (memory of one batch)."""
    def one(s):
        u, log_q = sample_proposal(q, jax.random.fold_in(key, s))
        return log_joint(u) - log_q

    return jax.lax.map(one, jnp.arange(int(num_samples)))


def iw_bound(log_w_SB: Array, num_samples: int) -> Array:
    """The bound L_S per example, averaged over the floor(S_total / S) disjoint groups of
    ``num_samples`` weights (each group's log-mean-exp is an unbiased draw of L_S)."""
    total = log_w_SB.shape[0]
    groups = total // int(num_samples)
    if groups < 1:
        raise ValueError(f"{total} weights cannot make a bound of {num_samples} samples")
    w = log_w_SB[:groups * num_samples].reshape((groups, int(num_samples)) + log_w_SB.shape[1:])
    return jnp.mean(ais.log_mean_exp(w, axis=1), axis=0)


def ais_log_marginal(log_joint_one: Callable[[Array, Array], Array], x_B: Array, q: Proposal,
                     key: Array, *, num_chains: int = 16, num_temps: int = 200,
                     mcmc_step_size: float = 0.5, mcmc_steps: int = 1,
                     examples_per_pass: int = 16) -> Array:
    """AIS estimate of log p(x) per example (the log of an unbiased estimate of p(x), so a
    stochastic lower bound): from q's first Laplace component to the posterior, in q's whitened
    coordinates eps (u = mean + A eps), where the path starts at N(0, I) and one MALA step size
    serves every example.

    ``log_joint_one(x_1..., u_C...) -> (C,)``: log p(x, u) of one example x (batch of 1) at C
    values of u. Example b is keyed ``fold_in(key, b)``; ``examples_per_pass`` examples run
    at once (vmapped: C chains each make a batch too small to keep the CPU busy), the results
    the same as one at a time."""
    shape = q.mean_MB.shape[2:]
    mean_Bd = _flat(q.mean_MB[0])
    chol_Bdd = None if q.chol_MBdd is None else q.chol_MBdd[0]
    prec_Bd = None if q.prec_MBd is None else q.prec_MBd[0]
    _, _, log_det_B = _whiten_maps(mean_Bd, chol_Bdd, prec_Bd)

    def one(b):
        mean_d, x_1 = mean_Bd[b], jax.lax.dynamic_index_in_dim(x_B, b, keepdims=True)
        if chol_Bdd is not None:
            chol = chol_Bdd[b]
            from_white = lambda e: mean_d + jax.scipy.linalg.solve_triangular(
                chol, e.T, lower=True, trans=1).T
        else:
            scale = jax.lax.rsqrt(prec_Bd[b])
            from_white = lambda e: mean_d + scale * e

        def g(eps_Cd):
            u = from_white(eps_Cd).reshape((eps_Cd.shape[0],) + shape)
            return log_joint_one(x_1, u) + log_det_B[b]

        return ais.ais_log_z(g, jax.random.fold_in(key, b), mean_d.shape,
                             num_chains=num_chains, num_temps=num_temps,
                             mcmc_step_size=mcmc_step_size, mcmc_steps=mcmc_steps,
                             prior=Prior.gaussian(1.0)).log_z

    return jax.lax.map(one, jnp.arange(x_B.shape[0]),
                       batch_size=max(1, min(int(examples_per_pass), x_B.shape[0])))
