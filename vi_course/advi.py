r"""Automatic differentiation variational inference (chapter "ADVI").

ADVI fits a Gaussian :math:`q(\eta) = N(\mu, LL^\top)` to a model whose latent vector
:math:`\theta` may be constrained, by working in the unconstrained space
:math:`\eta = T(\theta) \in \mathbb{R}^d` (:mod:`vi_course.transforms`). The objective is

.. math::

    \mathrm{ELBO}(\mu, L) = E_{\eta \sim N(\mu, LL^\top)}\big[\log p(x, T^{-1}(\eta))
        + \log|\det J_{T^{-1}}(\eta)|\big] + H[N(\mu, LL^\top)],

the ELBO of the implied :math:`q(\theta)`: the Jacobian term enters with a **plus** sign because
:math:`H[q_\theta] = H[q_\eta] + E_{q_\eta}[\log|\det J_{T^{-1}}(\eta)|]` (the ADVI page subtracts
it and calls the entropy invariant; see the errata). It is maximised with Adam on the
reparameterisation gradient (:mod:`vi_course.gradients`), with a Robbins-Monro decay of the step
size and a stopping rule on a smoothed ELBO.

Two engineering choices make the defaults work across scales without tuning:

* **Initialisation and preconditioning** (``init="laplace"``, the default): a few L-BFGS steps find
  the mode :math:`\hat\eta` of the unconstrained log density and the diagonal of its Hessian gives
  per-coordinate scales :math:`s_j = (-\partial^2_{jj}\log\tilde p(\hat\eta))^{-1/2}`. The
  optimiser then works in the whitened coordinates :math:`a` with :math:`\mu = \hat\eta + s\odot
  a_\mu` and :math:`L = \mathrm{diag}(s) L_a`, so a step of Adam has the same meaning whether the
  posterior standard deviation is 0.001 or 1000. ``init="zero"`` starts at :math:`N(0, I)` without
  preconditioning (the textbook recipe).
* **Averaging**: the returned parameters are the average of the iterates over the final windows
  (Polyak-Ruppert averaging), which removes most of the jitter that the stochastic gradient leaves.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import autograd
import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval
from scipy import optimize

from . import _checks
from . import transforms as _transforms
from .families import FullRankGaussian, GaussianFamily, MeanFieldGaussian
from .optim import Adam, robbins_monro

__all__ = ["advi", "ADVIResult", "NonFiniteELBOError", "FAMILIES"]

FAMILIES = {"meanfield": MeanFieldGaussian, "fullrank": FullRankGaussian}
_INITS = ("laplace", "zero")
_GRADIENTS = ("stl", "closed_form")


class NonFiniteELBOError(FloatingPointError):
    """Raised when the ELBO estimate or its gradient becomes NaN or infinite during ADVI."""


@dataclass(frozen=True)
class ADVIResult:
    r"""Result of :func:`advi` (chapter: ADVI).

    Attributes
    ----------
    params : ndarray, shape (family.n_params,)
        Variational parameters of :math:`q(\eta)` in the unconstrained space, in the family's flat
        layout (see :mod:`vi_course.families`).
    family : MeanFieldGaussian or FullRankGaussian
    transform : vi_course.transforms.JointTransform
        The bijection :math:`T` with :math:`\theta = T^{-1}(\eta)`.
    elbo_trace : ndarray, shape (n_steps,)
        The Monte Carlo ELBO estimate at every step (before that step's update).
    smoothed_elbo : ndarray
        Mean of ``elbo_trace`` over consecutive windows of ``window`` steps.
    converged : bool
        Whether the stopping rule fired before ``n_steps``.
    n_steps : int
        Number of optimisation steps taken.
    init_params : ndarray
        Parameters the optimisation started from.
    """

    params: np.ndarray
    family: GaussianFamily
    transform: object
    elbo_trace: np.ndarray
    smoothed_elbo: np.ndarray
    converged: bool
    n_steps: int
    init_params: np.ndarray = field(repr=False)

    def mean_cov(self):
        r"""Mean and covariance of :math:`q(\eta)` in the **unconstrained** space.

        Chapter: ADVI.

        Returns
        -------
        mean : ndarray, shape (dim,)
        cov : ndarray, shape (dim, dim)
        """
        return self.family.mean_cov(self.params)

    def sample_unconstrained(self, n, rng):
        r"""``n`` draws :math:`\eta \sim q(\eta)` in the unconstrained space, shape (n, dim).

        Chapter: ADVI.
        """
        return self.family.sample(self.params, n, rng)

    def sample(self, n, rng):
        r"""``n`` draws :math:`\theta = T^{-1}(\eta)`, :math:`\eta \sim q(\eta)`, in the model's
        **constrained** space, shape (n, dim).

        Chapter: ADVI.

        Parameters
        ----------
        n : int
        rng : numpy.random.Generator or int

        Returns
        -------
        ndarray, shape (n, dim)
        """
        return np.asarray(self.transform.inverse(self.sample_unconstrained(n, rng)), dtype=float)


def _check_model(model):
    dim = getattr(model, "dim", None)
    if not callable(getattr(model, "log_joint", None)) or dim is None:
        raise ValueError("model must have an integer attribute dim and a method log_joint(z) "
                         f"mapping (n, dim) to (n,); got {type(model).__name__}")
    try:
        dim = _checks.positive_int("model.dim", dim)
    except ValueError as exc:
        raise ValueError(f"model.dim must be a positive integer, got {dim!r}") from exc
    supports = getattr(model, "supports", None)
    if supports is None:
        supports = ["real"] * dim
    transform = _transforms.from_supports(supports)
    if transform.dim != dim:
        raise ValueError(f"model.supports has {transform.dim} entries but model.dim is {dim}")
    return dim, transform


def _check_family(family, dim):
    if isinstance(family, GaussianFamily):
        if family.dim != dim:
            raise ValueError(f"family.dim ({family.dim}) must equal model.dim ({dim})")
        return family
    if not isinstance(family, str) or family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)} (or a family instance), "
                         f"got {family!r}")
    return FAMILIES[family](dim)


def _laplace_start(log_density, dim):
    """Mode of ``log_density`` (L-BFGS from 0) and per-coordinate scales from the Hessian diagonal."""
    def scalar(e):
        return log_density(anp.reshape(e, (1, dim)))[0]

    value_and_grad = autograd.value_and_grad(scalar)

    def negative(e):
        with np.errstate(all="ignore"):
            try:
                v, g = value_and_grad(e)
            except (ValueError, FloatingPointError, OverflowError):
                return np.inf, np.zeros(dim)
        v, g = float(v), np.asarray(g, dtype=float)
        if not np.isfinite(v) or not np.all(np.isfinite(g)):
            return np.inf, np.zeros(dim)
        return -v, -g

    start = np.zeros(dim)
    f0, _ = negative(start)
    mode = start
    with np.errstate(all="ignore"):
        try:
            res = optimize.minimize(negative, start, jac=True, method="L-BFGS-B",
                                    options={"maxiter": 500})
            if np.all(np.isfinite(res.x)) and np.isfinite(res.fun) and res.fun <= f0:
                mode = np.asarray(res.x, dtype=float)
        except (ValueError, FloatingPointError, OverflowError):
            pass
        scale = np.ones(dim)
        try:
            hess = np.asarray(autograd.hessian(scalar)(mode), dtype=float)
            curvature = -np.diag(hess)
            good = np.isfinite(curvature) & (curvature > 0)
            scale[good] = 1.0 / np.sqrt(curvature[good])
        except (ValueError, FloatingPointError, OverflowError, np.linalg.LinAlgError):
            pass
    scale = np.clip(scale, 1e-8, 1e8)
    return mode, scale


def _log_diag_positions(family):
    """Positions, within the scale block of the flat parameters, of the log standard deviations."""
    if isinstance(family, FullRankGaussian):
        return family._diag_pos
    return np.arange(family.dim)


def _preconditioner(family, scale):
    """Diagonal ``c`` with ``params = base + c * a``: mean entries and off-diagonal rows scaled."""
    d = family.dim
    c = np.ones(family.n_params)
    c[:d] = scale
    if isinstance(family, FullRankGaussian):
        rows = family._rows
        off = family._rows != family._cols
        c[d:][off] = scale[rows[off]]
    return c


def advi(model, family="meanfield", n_steps=10_000, n_samples=50, seed=0, step_size=0.1,
         decay=0.01, init="laplace", gradient="stl", window=100, patience=3, min_steps=400, tol=1e-3, progress=False,
         print_every=None):
    r"""Fit a Gaussian in the unconstrained space by automatic differentiation VI.

    Chapter: ADVI. Maximises (ADVI page, corrected; lecture eq. 43 for the gradient)

    .. math::

        \mathrm{ELBO}(\mu, L) = E_{\eta \sim N(\mu, LL^\top)}\big[\log p(x, T^{-1}(\eta))
            + \log|\det J_{T^{-1}}(\eta)|\big] + H[N(\mu, LL^\top)]

    with a reparameterisation gradient (``n_samples`` draws per step; see ``gradient``) and
    Adam in ascent mode with the Robbins-Monro step size
    :math:`\gamma_n = \text{step\_size} / (1 + \text{decay}\cdot n)` (lecture eq. 48).

    Stopping rule: the ELBO estimates are averaged over consecutive windows of ``window`` steps
    (the smoothed ELBO). Once at least ``min_steps`` steps are done, the run stops when the
    smoothed ELBO has not exceeded its best value by more than ``tol`` for ``patience`` windows in
    a row, or after ``n_steps`` steps. The returned parameters are the average of the iterates over the last
    ``patience`` windows (Polyak-Ruppert averaging), or over the last window if the run did not
    converge.

    Parameters
    ----------
    model : object
        Needs ``dim`` (int) and ``log_joint(theta)`` mapping (n, dim) to (n,), written with
        :mod:`autograd.numpy`. Optional ``supports``: one entry per coordinate, ``"real"``,
        ``"positive"`` or ``("interval", a, b)``; a model without it is treated as all ``"real"``.
    family : {"meanfield", "fullrank"} or a family instance
    n_steps : int
        Maximum number of optimisation steps, >= 1.
    n_samples : int
        Monte Carlo samples per gradient, >= 1.
    seed : int or numpy.random.Generator
        Seeds the noise; the same seed gives the same result.
    step_size : float
        Initial Adam step size :math:`\alpha > 0` (in whitened units when ``init="laplace"``).
    decay : float
        Robbins-Monro decay :math:`\delta \ge 0`.
    init : {"laplace", "zero"} or array_like
        Starting point: Laplace-style mode and scales with diagonal preconditioning (default),
        :math:`N(0, I)` in the unconstrained space, or explicit flat parameters of the family
        (which also set the preconditioner from their standard deviations).
    gradient : {"stl", "closed_form"}
        ``"stl"`` (default): the "sticking the landing" reparameterisation gradient (Roeder, Wu and
        Duvenaud, 2017), the path derivative of :math:`\log\tilde p(\eta) - \log q(\eta)` through
        :math:`\eta = \mu + L\epsilon` with the score term :math:`\nabla_\theta\log q_\theta`
        (zero in expectation) dropped. It is unbiased and its variance vanishes when :math:`q`
        equals the target, so the iterates settle instead of jittering. ``elbo_trace`` then holds
        the Monte Carlo-entropy estimate :math:`\frac1K\sum_k[\log\tilde p(\eta_k) -
        \log q(\eta_k)]`. ``"closed_form"``: the gradient of
        :math:`\frac1K\sum_k\log\tilde p(\eta_k) + H[q]` (the estimator of the ADVI page), with
        ``elbo_trace`` holding that estimate.
    window : int
        Window length of the smoothed ELBO, >= 2.
    patience : int
        Number of windows without a new best smoothed ELBO before stopping, >= 1.
    min_steps : int
        Minimum number of steps before the stopping rule may fire, >= 0.
    tol : float
        Smallest increase of the smoothed ELBO (in nats) that counts as an improvement, >= 0.
    progress : bool
        Print a line ``step, smoothed ELBO, step size`` every ``print_every`` steps (default: every
        window) and a final summary line.
    print_every : int, optional

    Returns
    -------
    ADVIResult
        With ``.params``, ``.family``, ``.elbo_trace``, ``.mean_cov()`` (unconstrained space) and
        ``.sample(n, rng)`` (constrained space).

    Raises
    ------
    ValueError
        For bad arguments (unknown family, non-positive counts, a model without ``dim`` or
        ``log_joint``, supports that do not match ``dim``).
    NonFiniteELBOError
        If the ELBO estimate or its gradient becomes NaN or infinite (the optimisation diverged;
        retry with a smaller ``step_size``).

    Examples
    --------
    >>> from vi_course.models import ConjugateGaussian
    >>> fit = advi(ConjugateGaussian([0.2, 1.1, 0.4]), n_steps=2000)
    >>> mean, cov = fit.mean_cov()
    >>> bool(abs(mean[0] - 0.425) < 0.05)
    True
    """
    dim, transform = _check_model(model)
    family = _check_family(family, dim)
    n_steps = _checks.positive_int("n_steps", n_steps)
    n_samples = _checks.positive_int("n_samples", n_samples)
    rng = _checks.generator(seed)
    step_size = _checks.positive_scalar("step_size", step_size)
    decay = _checks.positive_scalar("decay", decay, allow_zero=True)
    window = _checks.positive_int("window", window, minimum=2)
    patience = _checks.positive_int("patience", patience)
    min_steps = _checks.positive_int("min_steps", min_steps, minimum=0)
    tol = _checks.positive_scalar("tol", tol, allow_zero=True)
    if gradient not in _GRADIENTS:
        raise ValueError(f"gradient must be one of {_GRADIENTS}, got {gradient!r}")
    print_every = window if print_every is None else _checks.positive_int("print_every", print_every)
    log_joint = model.log_joint

    if all(s == "real" for s in transform.supports):
        log_density = log_joint        # T is the identity: skip the bookkeeping
    else:
        def log_density(eta):
            """Unconstrained log density: log p(x, T^{-1}(eta)) + log|det J_{T^{-1}}(eta)|."""
            return log_joint(transform.inverse(eta)) + transform.inverse_log_abs_det_jacobian(eta)

    # ---- check the model's output once, with a clear message
    probe = log_density(np.zeros((2, dim)))
    if np.shape(probe) != (2,):
        raise ValueError(f"model.log_joint must map (n, {dim}) to (n,); for n=2 it returned shape "
                         f"{np.shape(probe)}")

    # ---- starting point and preconditioner
    if isinstance(init, str):
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS} or an array of flat parameters, got {init!r}")
        if init == "laplace":
            mode, scale = _laplace_start(log_density, dim)
        else:
            mode, scale = np.zeros(dim), np.ones(dim)
        base = family.init_params(mean=mode, scale=scale)
    else:
        base = family._check_params(init, allow_batch=False).copy()
        scale = np.sqrt(np.diag(family.mean_cov(base)[1]))
    precond = _preconditioner(family, scale)

    # reparameterisation gradient: autograd differentiates the model only, z -> sum_k log p~(z_k);
    # the chain rule through eta = mu + L eps is done in closed form by family.sample_vjp, and the
    # entropy gradient is 1 on every log-scale entry (H = const + sum_j log L_jj).
    density_value_and_grad = autograd.value_and_grad(lambda eta: anp.sum(log_density(eta)))
    entropy_grad = family.sample_vjp(base, np.zeros((1, dim)), np.zeros((1, dim)))
    entropy_grad[dim + np.asarray(_log_diag_positions(family))] = 1.0

    def value_and_grad(params, eps):
        eta = family._sample(params, eps)
        total, grad_eta = density_value_and_grad(eta)
        grad_eta = np.asarray(grad_eta, dtype=float)
        if gradient == "closed_form":
            value = total / n_samples + family.entropy(params)
            grad = family._sample_vjp(params, eps, grad_eta) / n_samples + entropy_grad
        else:
            # sticking the landing: path derivative of log p~(eta) - log q(eta), score term dropped
            log_q = family._log_prob(params, eta)
            value = (total - np.sum(log_q)) / n_samples
            cot = grad_eta - family._grad_log_prob_from_noise(params, eps)
            grad = family._sample_vjp(params, eps, cot) / n_samples
        return value, grad
    optimiser = Adam(robbins_monro(step_size, decay), maximize=True)
    a = np.zeros(family.n_params)
    state = optimiser.init(a)
    params = base.copy()

    trace = np.empty(n_steps)
    history = np.empty((n_steps, family.n_params))
    smoothed, best, stale, converged = [], -np.inf, 0, False
    t = 0
    for t in range(n_steps):
        eps = family.noise(n_samples, rng)
        with np.errstate(all="ignore"):
            value, grad = value_and_grad(params, eps)
        value, grad = float(getval(value)), np.asarray(grad, dtype=float)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            raise NonFiniteELBOError(
                f"advi: the ELBO estimate became non-finite at step {t} (ELBO estimate {value}, "
                f"gradient finite: {bool(np.all(np.isfinite(grad)))}). The optimisation diverged; "
                f"retry with a smaller step_size (currently {step_size}) or a larger decay, and check "
                "that model.log_joint does not overflow.")
        trace[t] = value
        history[t] = params
        delta, state = optimiser.update(precond * grad, state)
        a = a + delta
        params = base + precond * a

        if (t + 1) % window == 0:
            smoothed.append(float(np.mean(trace[t + 1 - window:t + 1])))
            if smoothed[-1] > best + tol:
                best, stale = smoothed[-1], 0
            else:
                stale += 1
            if t + 1 >= min_steps and stale >= patience:
                converged = True
        if progress and ((t + 1) % print_every == 0):
            recent = trace[max(0, t + 1 - window):t + 1]
            print(f"advi step {t + 1:6d}  smoothed ELBO {np.mean(recent): .6g}  "
                  f"step size {optimiser.schedule(t):.3g}", flush=True)
        if converged:
            break

    steps = t + 1
    tail = patience * window if converged else min(window, steps)
    final = history[steps - tail:steps].mean(axis=0)
    if progress:
        status = "converged" if converged else "reached n_steps without converging"
        print(f"advi {status} after {steps} steps; final smoothed ELBO "
              f"{np.mean(trace[max(0, steps - window):steps]): .6g}", flush=True)
    return ADVIResult(params=final, family=family, transform=transform,
                      elbo_trace=trace[:steps].copy(), smoothed_elbo=np.array(smoothed),
                      converged=converged, n_steps=steps, init_params=base)
