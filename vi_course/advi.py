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

Three engineering choices make the defaults work across scales without tuning, and fast:

* **Initialisation and whitening** (``init="laplace"``, the default): a few damped Newton steps
  find the mode :math:`\hat\eta` of the unconstrained log density :math:`\log\tilde p`, with the
  Hessian :math:`H` from central differences of its exact gradient. The optimiser then works in
  whitened coordinates :math:`\xi` with :math:`\eta = \hat\eta + W\xi`, fitting
  :math:`q(\xi) = N(a_\mu, L_a L_a^\top)`, so that :math:`\mu = \hat\eta + W a_\mu` and
  :math:`L = W L_a`. For the mean-field family :math:`W = \mathrm{diag}(s)` with
  :math:`s_j = (-H_{jj})^{-1/2}` (the mean-field optimum of a Gaussian target); for the full-rank
  family :math:`W` is the Cholesky factor of :math:`(-H)^{-1}` (the Laplace approximation). A step
  of Adam then has the same meaning whether the posterior standard deviation is 0.001 or 1000, and
  a Gaussian posterior is matched at the first step. ``init="zero"`` starts at :math:`N(0, I)`
  without whitening (the textbook recipe).
* **One model gradient per step**: :mod:`autograd` differentiates only the model's ``log_joint``
  with respect to the batch of constrained draws (one backward pass for all draws); the chain
  rule through :math:`T^{-1}` (:meth:`~vi_course.transforms.JointTransform.inverse_and_derivatives`),
  through :math:`\eta = \hat\eta + W(a_\mu + L_a\epsilon)` (:meth:`~vi_course.families.GaussianFamily.sample_vjp`)
  and the entropy term are done in closed form with numpy, and inputs are validated once, before
  the loop.
* **Stopping and averaging**: the ELBO estimates are averaged over windows of ``window`` steps
  (the smoothed ELBO); the run stops once the gain of a window over the previous one has been, for
  ``patience`` windows in a row, smaller than ``tol`` or not statistically significant (below two
  standard errors of the difference) and the window-mean parameters have moved by less than
  ``param_tol`` standard deviations, **and** the averaged ELBO gradient says that the optimum is
  within ``param_tol`` standard deviations of q (or not significantly away): a scale-free
  Newton-step estimate of the remaining distance (:meth:`_Coordinates.distance`). The movement and
  the gain alone are not enough, because the decaying step size makes them small far from the
  optimum too (from ``init="zero"`` on an ill-conditioned target the old rule stopped several
  standard deviations away). The returned parameters are the average of the iterates over those
  final windows (Polyak-Ruppert averaging), which removes most of the jitter that the stochastic
  gradient leaves.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import autograd
import numpy as np
from scipy.special import ndtri

from . import _checks
from . import transforms as _transforms
from .families import FullRankGaussian, GaussianFamily, MeanFieldGaussian
from .optim import Adam, robbins_monro

__all__ = ["advi", "ADVIResult", "NonFiniteELBOError", "FAMILIES"]

FAMILIES = {"meanfield": MeanFieldGaussian, "fullrank": FullRankGaussian}
_INITS = ("laplace", "zero")
_GRADIENTS = ("stl", "closed_form")
STEIN_MAX_DIM = 100        # mean-field: estimate the target's precision for the stopping rule up to this dim
SIGNIFICANCE_Z = 2.0       # a window's ELBO gain counts only if it exceeds this many standard errors
_SCALE_CLIP = (1e-8, 1e8)  # bounds on the whitening scales taken from the Laplace curvature
LOG_2PI = float(np.log(2.0 * np.pi))


class NonFiniteELBOError(FloatingPointError, ValueError):
    r"""Raised when the ELBO estimate or its gradient becomes NaN or infinite during ADVI.

    Chapter: ADVI (the objective of equation ``eq-advi-elbo`` must stay finite; divergence usually
    means a too large ``step_size`` or a ``log_joint`` that overflows). It is a ``ValueError`` too:
    at the first step it means that ``model.log_joint`` is not finite where q puts its draws.
    """


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

        Chapter: ADVI, equation ``eq-advi-reparam``: :math:`\eta = \mu + L\epsilon`.

        Parameters
        ----------
        n : int
            Number of draws, >= 1.
        rng : numpy.random.Generator or int

        Returns
        -------
        ndarray, shape (n, dim)
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


def unconstrained_value_and_grad(log_joint, transform):
    r"""Batched :math:`\log\tilde p(\eta)` and :math:`\nabla_\eta\log\tilde p(\eta)` with one autograd pass.

    Chapter: ADVI. The unconstrained log density is

    .. math:: \log\tilde p(\eta) = \log p(x, T^{-1}(\eta)) + \log|\det J_{T^{-1}}(\eta)|,

    and, :math:`T^{-1}` acting coordinate-wise, its gradient is
    :math:`\nabla_\theta\log p \odot dT^{-1}/d\eta + \nabla_\eta\log|\det J_{T^{-1}}|`.
    :mod:`autograd` differentiates only ``log_joint``, once per batch: because ``log_joint`` is
    vectorised over rows (row ``k`` depends on ``theta[k]`` only), the vector-Jacobian product
    with a vector of ones gives every row's gradient in a single backward pass. The transform's
    derivatives come in closed form from
    :meth:`~vi_course.transforms.JointTransform.inverse_and_derivatives`.

    Parameters
    ----------
    log_joint : callable
        ``theta (n, dim) -> (n,)`` in the constrained space, written with :mod:`autograd.numpy`,
        each row depending only on the same row of ``theta``.
    transform : vi_course.transforms.JointTransform

    Returns
    -------
    callable
        ``eta -> (value, grad)`` for a float array ``eta`` of shape (n, dim), with ``value`` of
        shape (n,) and ``grad`` of shape (n, dim). ``eta`` is not validated (this is the inner loop
        of :func:`advi`, which validates its inputs once).
    """
    inverse = transform._inverse_and_derivatives
    make_vjp = autograd.make_vjp(log_joint)

    def value_and_grad(eta):
        theta, log_det, d_theta, d_log_det = inverse(eta)
        vjp, value = make_vjp(theta)
        grad_theta = vjp(np.ones(eta.shape[0]))
        return (np.asarray(value, dtype=float) + log_det,
                np.asarray(grad_theta, dtype=float) * d_theta + d_log_det)

    return value_and_grad


def _value_grad_precision(target, eta):
    r"""Value, gradient and negative Hessian of ``target`` at one point, from one batched call.

    Chapter: ADVI (initialisation). The gradient is evaluated at :math:`\eta` and at
    :math:`\eta \pm h_j e_j` with :math:`h_j = 10^{-4}\max(1, |\eta_j|)` in a single batch of
    :math:`2d + 1` rows; central differences of the exact gradient give the Hessian column by
    column, :math:`H_{:,j} \approx (\nabla\log\tilde p(\eta + h_j e_j) - \nabla\log\tilde p(\eta - h_j
    e_j)) / 2h_j`, which is then symmetrised. Returns ``(-inf, 0, NaN)`` where the value or the
    gradient is not finite.
    """
    dim = eta.size
    h = 1e-4 * np.maximum(1.0, np.abs(eta))
    points = np.concatenate([eta[None, :], eta + np.diag(h), eta - np.diag(h)])
    with np.errstate(all="ignore"):
        try:
            values, grads = target(points)
        except (ValueError, FloatingPointError, OverflowError, ZeroDivisionError):
            values, grads = np.full(1, np.nan), np.full((1, dim), np.nan)
        value, grad = float(values[0]), grads[0]
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return -np.inf, np.zeros(dim), np.full((dim, dim), np.nan)
        hessian = (grads[1:dim + 1] - grads[dim + 1:]) / (2.0 * h[:, None])   # row j: d grad / d eta_j
        precision = -0.5 * (hessian + hessian.T)
    return value, grad, precision


def _laplace_start(target, dim, max_iter=100):
    r"""Mode :math:`\hat\eta` of the unconstrained log density and the negative Hessian there.

    Chapter: ADVI (initialisation). Damped Newton ascent from :math:`\eta = 0` (Levenberg-Marquardt
    damping: the step solves :math:`(-H + \lambda D)p = \nabla\log\tilde p` with :math:`D` the
    diagonal of :math:`|{-H}|`; :math:`\lambda` grows when :math:`-H + \lambda D` is not positive
    definite or the step does not increase :math:`\log\tilde p` enough, and shrinks after a good
    step). Gradients are exact (:func:`unconstrained_value_and_grad`) and the Hessian comes from
    central differences of them (:func:`_value_grad_precision`), so every Newton iteration costs one
    batched model gradient. It stops when the Newton decrement :math:`g^\top(-H)^{-1}g` falls
    below ``1e-12`` nats or after ``max_iter`` iterations, and never returns a point with a lower
    density than the start.

    Returns
    -------
    mode : ndarray, shape (dim,)
    precision : ndarray, shape (dim, dim)
        :math:`-H` at ``mode`` (NaN entries if it could not be evaluated).
    """
    x = np.zeros(dim)
    f, g, prec = _value_grad_precision(target, x)
    if not np.isfinite(f):
        return x, prec
    lam = 0.0
    for _ in range(max_iter):
        if not np.all(np.isfinite(prec)):
            break
        damping = np.abs(np.diag(prec))
        damping = np.maximum(damping, 1e-12 * max(1.0, float(damping.max())))
        try:
            chol = np.linalg.cholesky(prec + lam * np.diag(damping))
        except np.linalg.LinAlgError:
            lam = 1e-3 if lam == 0.0 else 10.0 * lam
            if lam > 1e12:
                break
            continue
        step = np.linalg.solve(chol.T, np.linalg.solve(chol, g))
        decrement = float(g @ step)
        if lam == 0.0 and decrement < 1e-12:
            break                                   # Newton decrement: at most ~1e-12 nats to gain
        f_new, g_new, prec_new = _value_grad_precision(target, x + step)
        if np.isfinite(f_new) and f_new >= f + 1e-4 * decrement:
            x, f, g, prec = x + step, f_new, g_new, prec_new
            lam = 0.0 if lam < 1e-6 else 0.1 * lam
        else:
            lam = 1e-3 if lam == 0.0 else 10.0 * lam
            if lam > 1e12:
                break
    return x, prec


def _laplace_factors(precision):
    r"""Whitening factors from the Laplace precision :math:`-H` (module docstring).

    Returns ``(scale, chol)``: the conditional standard deviations :math:`s_j = (-H_{jj})^{-1/2}`
    (1 where the curvature is not positive and finite, clipped to ``_SCALE_CLIP``) and the
    lower-triangular Cholesky factor :math:`W` of :math:`(-H)^{-1}`, or ``diag(scale)`` when
    :math:`-H` is not positive definite or a scale of :math:`W` falls outside ``_SCALE_CLIP``.
    """
    dim = precision.shape[0]
    curvature = np.diag(precision)
    good = np.isfinite(curvature) & (curvature > 0)
    scale = np.ones(dim)
    scale[good] = 1.0 / np.sqrt(curvature[good])
    scale = np.clip(scale, *_SCALE_CLIP)
    if not np.all(good) or not np.all(np.isfinite(precision)):
        return scale, np.diag(scale)
    try:
        chol = np.linalg.cholesky(np.linalg.inv(precision))
    except np.linalg.LinAlgError:
        return scale, np.diag(scale)
    d = np.diag(chol)
    if not np.all(np.isfinite(chol)) or np.any(d < _SCALE_CLIP[0]) or np.any(d > _SCALE_CLIP[1]):
        return scale, np.diag(scale)
    return scale, chol


class _Coordinates:
    r"""Preconditioned coordinates ``a`` of the variational parameters (module docstring).

    Chapter: ADVI. ``a`` has the family's flat layout and starts at ``family.init_params()``
    (:math:`a_\mu = 0`, unit scales), which maps to :math:`\mu = \hat\eta` and the starting scales.
    The mean is always :math:`\mu = \hat\eta + W a_\mu` with a lower-triangular :math:`W`.

    * mean-field: :math:`\sigma = s \odot e^{a_\sigma}`, so :math:`\eta = \mu + \sigma\odot\epsilon`
      (``W`` may be a full Cholesky factor: the mean's coordinates may be correlated even though
      :math:`q` is not);
    * full-rank: :math:`L = W L_a`, i.e. :math:`\eta = \hat\eta + W\xi` with
      :math:`\xi = a_\mu + L_a\epsilon`; :math:`\log L_{jj} = \log W_{jj} + \log(L_a)_{jj}`.
    """

    def __init__(self, family, shift, chol, scale):
        self.family, self.dim = family, family.dim
        self.shift = np.asarray(shift, dtype=float)
        self.chol = np.asarray(chol, dtype=float)
        self.diagonal = bool(np.all(self.chol == np.diag(np.diag(self.chol))))
        self.meanfield = isinstance(family, MeanFieldGaussian)
        self.log_scale = np.log(np.asarray(scale, dtype=float))       # mean-field: log s
        self.log_det_chol = float(np.sum(np.log(np.diag(self.chol))))  # full-rank: log|det W|
        self.log_diag = self.dim + np.asarray(_log_diag_positions(family))

    def _mean(self, a_mu):
        if self.diagonal:
            return self.shift + np.diag(self.chol) * a_mu
        return self.shift + self.chol @ a_mu

    def draw(self, a, eps):
        r"""``(eta, log q(eta), aux)`` for noise ``eps`` (n, dim); ``aux`` is reused by :meth:`grad`."""
        d = self.dim
        if self.meanfield:
            log_sigma = self.log_scale + a[d:]
            sigma = np.exp(log_sigma)
            eta = self._mean(a[:d]) + sigma * eps
            log_q = -0.5 * np.einsum("ij,ij->i", eps, eps) - (np.sum(log_sigma) + 0.5 * d * LOG_2PI)
            return eta, log_q, sigma
        xi, log_q_xi, grad_log_q_xi = self.family._reparam_terms(a, eps)
        eta = self.shift + (xi * np.diag(self.chol) if self.diagonal else xi @ self.chol.T)
        # log q_eta(eta) = log q_xi(xi) - log|det W|
        return eta, log_q_xi - self.log_det_chol, grad_log_q_xi

    def grad(self, a, eps, aux, grad_eta, stl):
        r"""Gradient in ``a`` of :math:`\frac1K\sum_k[\log\tilde p(\eta_k) - \log q(\eta_k)]` along the path.

        ``stl=True``: the path derivative with the score term dropped ("sticking the landing");
        ``stl=False``: the gradient of :math:`\frac1K\sum_k\log\tilde p(\eta_k)` only (the
        closed-form entropy gradient is added by the caller).
        """
        n = eps.shape[0]
        if self.meanfield:
            sigma = aux
            cot = grad_eta + eps / sigma if stl else grad_eta       # grad log q = -eps / sigma
            g_mu = cot.sum(axis=0)
            g_mu = g_mu * np.diag(self.chol) if self.diagonal else g_mu @ self.chol   # W^T g
            return np.concatenate([g_mu, (cot * eps).sum(axis=0) * sigma]) / n
        cot = grad_eta * np.diag(self.chol) if self.diagonal else grad_eta @ self.chol
        if stl:
            cot = cot - aux
        return self.family._sample_vjp(a, eps, cot) / n

    def log_scale_sum(self, a):
        r""":math:`\sum_j \log L_{jj}` of :math:`q(\eta)` (its entropy minus :math:`\tfrac d2(1 + \log 2\pi)`)."""
        extra = np.sum(self.log_scale) if self.meanfield else self.log_det_chol
        return float(np.sum(a[self.log_diag]) + extra)

    def distance(self, a, grads, eta_grads=None, precision=None):
        r"""Scale-free distance to the optimum from a window of ELBO gradients (stopping rule of :func:`advi`).

        Chapter: ADVI. At the optimum the expected ELBO gradient vanishes; what matters is how far
        the optimum still is, in units of :math:`q`'s standard deviations. For a Gaussian target
        with precision :math:`P` the mean gradient is :math:`\bar g_\eta = E_q[\nabla\log\tilde p]
        = P(\mu^* - \mu)`, so the remaining distance is the Newton step :math:`P^{-1}\bar g_\eta`.

        * full-rank: at the optimum :math:`LL^\top = P^{-1}`, so the step in :math:`q`-whitened
          coordinates is :math:`L^\top\bar g_\eta = L_a^\top g_{a_\mu}`; the gradients in every
          entry of :math:`L_a` (dimensionless) are tested too;
        * mean-field: :math:`\sigma_j^2 = 1/P_{jj}` at the optimum, which says nothing about the
          off-diagonal precision. ``precision`` is then an estimate of :math:`P` from the same draws
          (Stein's identity :math:`E_q[\nabla\log\tilde p(\eta)\,\epsilon^\top]\,
          \mathrm{diag}(\sigma)^{-1} = E_q[\nabla^2\log\tilde p]`), and the step is
          :math:`P^{-1}\bar g_\eta / \sigma`; without it (large ``dim``, or :math:`P` not positive
          definite) :math:`\sigma \odot \bar g_\eta`. The gradients in :math:`\log\sigma_j`
          (:math:`1 - \sigma_j^2 P_{jj}` for a Gaussian target) are tested too.

        :func:`advi` averages these over its last ``patience`` windows (the iterates it returns) and
        requires every entry to be below ``param_tol`` or within a few standard errors of zero (not
        significantly non-zero). Unlike the movement of the iterates, which the decaying step size
        makes small whether or not the optimum is near, this measures the remaining distance, so a
        run is not declared converged many standard deviations away from the optimum.

        Parameters
        ----------
        a : ndarray, shape (n_params,)
            Coordinates at which the window is summarised (the window mean).
        grads : ndarray, shape (window, n_params)
            ELBO gradients in the coordinates ``a``, one row per step of the window.
        eta_grads : ndarray, shape (window, dim), optional
            Mean-field: per-step means of :math:`\nabla_\eta\log\tilde p` over the draws.
        precision : ndarray, shape (dim, dim), optional
            Mean-field: the Stein estimate of :math:`P` over the window.

        Returns
        -------
        mean, var : ndarray, shape (2 dim,) (mean-field) or (n_params,) (full-rank)
            Window mean of the tested quantities and the squared standard error of that mean.
        """
        d = self.dim
        if self.meanfield:
            sigma = np.exp(self.log_scale + a[d:])
            steps = None
            if precision is not None and eta_grads is not None:
                sym = 0.5 * (precision + precision.T)
                try:
                    chol = np.linalg.cholesky(sym)
                    steps = np.linalg.solve(chol.T, np.linalg.solve(chol, eta_grads.T)).T / sigma
                except np.linalg.LinAlgError:
                    steps = None
            if steps is None:
                steps = grads[:, :d] * np.exp(a[d:])          # sigma * g_eta (W = diag(s))
            blocks = np.concatenate([steps, grads[:, d:]], axis=1)
        else:
            whitened = grads[:, :d] @ self.family._chol_numpy(np.asarray(a, dtype=float))
            blocks = np.concatenate([whitened, grads[:, d:]], axis=1)
        return blocks.mean(axis=0), blocks.var(axis=0, ddof=1) / blocks.shape[0]

    def mean_sd(self, a):
        """Mean and marginal standard deviations of :math:`q(\\eta)` for coordinates ``a``."""
        d = self.dim
        mu = self._mean(np.asarray(a[:d], dtype=float))
        if self.meanfield:
            return mu, np.exp(self.log_scale + a[d:])
        chol = self.chol @ self.family._chol_numpy(np.asarray(a, dtype=float))
        return mu, np.sqrt(np.einsum("ij,ij->i", chol, chol))

    def params(self, a):
        """Flat parameters of :math:`q(\\eta)` (the family's layout) from coordinates ``a``."""
        family, d = self.family, self.dim
        mu = self._mean(np.asarray(a[:d], dtype=float))
        if self.meanfield:
            return np.concatenate([mu, self.log_scale + a[d:]])
        chol = self.chol @ family._chol_numpy(np.asarray(a, dtype=float))
        packed = chol[family._rows, family._cols]
        packed[family._diag_pos] = np.log(np.diag(self.chol)) + a[d + family._diag_pos]
        return np.concatenate([mu, packed])


def _log_diag_positions(family):
    """Positions, within the scale block of the flat parameters, of the log standard deviations."""
    if isinstance(family, FullRankGaussian):
        return family._diag_pos
    return np.arange(family.dim)


def _adam_ascent_step(grad, m, v, step, lr, b1, b2, eps):
    """One Adam ascent increment, the update of :class:`vi_course.optim.Adam` (``maximize=True``)
    without its input checks; ``step`` is the 0-based update count. Returns ``(delta, m, v)``."""
    m = b1 * m + (1.0 - b1) * grad
    v = b2 * v + (1.0 - b2) * grad * grad
    t = step + 1
    delta = (lr / (1.0 - b1 ** t)) * m / (np.sqrt(v / (1.0 - b2 ** t)) + eps)
    return delta, m, v


def advi(model, family="meanfield", n_steps=10_000, n_samples=50, seed=0, step_size=0.1,
         decay=0.01, init="laplace", gradient="stl", window=25, patience=3, min_steps=100, tol=1e-3,
         progress=False, print_every=None, param_tol=0.1):
    r"""Fit a Gaussian in the unconstrained space by automatic differentiation VI.

    Chapter: ADVI. Maximises (ADVI page, corrected; lecture eq. 43 for the gradient)

    .. math::

        \mathrm{ELBO}(\mu, L) = E_{\eta \sim N(\mu, LL^\top)}\big[\log p(x, T^{-1}(\eta))
            + \log|\det J_{T^{-1}}(\eta)|\big] + H[N(\mu, LL^\top)]

    with a reparameterisation gradient (``n_samples`` draws per step; see ``gradient``) and
    Adam in ascent mode with the Robbins-Monro step size
    :math:`\gamma_n = \text{step\_size} / (1 + \text{decay}\cdot n)` (lecture eq. 48), in the
    whitened coordinates of the module docstring.

    Stopping rule: the ELBO estimates are averaged over consecutive windows of ``window`` steps
    (the smoothed ELBO :math:`\bar\ell_k`, with standard error from the spread of the estimates in
    the window). A window is *flat* when its gain :math:`\bar\ell_k - \bar\ell_{k-1}` is smaller
    than ``tol`` or smaller than :math:`2\,\mathrm{se}(\bar\ell_k - \bar\ell_{k-1})` (no
    significant improvement) and the window-mean parameters moved by less than ``param_tol``
    (means in units of q's standard deviations, log standard deviations in nats). Once at least
    ``min_steps`` steps are done and ``patience`` flat windows came in a row, the run stops if, in
    addition, the ELBO gradient averaged over those windows puts the optimum within ``param_tol``
    standard deviations of q in every coordinate (or not significantly away from it): the
    Newton-step distance :math:`P^{-1}\bar g` in q's units, with :math:`P` the target's precision
    (from :math:`LL^\top` for the full-rank family; estimated from the same draws with Stein's
    identity for the mean-field family up to ``dim = 100``), together with the gradients in the log
    scales. Otherwise it runs on, up to ``n_steps`` steps, and reports ``converged=False``; so
    ``converged=True`` is not claimed far from the optimum however slowly the iterates move. The
    returned parameters are the average of the iterates over the last ``patience`` windows
    (Polyak-Ruppert averaging), or over the last window if the run did not converge.

    Parameters
    ----------
    model : object
        Needs ``dim`` (int) and ``log_joint(theta)`` mapping (n, dim) to (n,), written with
        :mod:`autograd.numpy`, each row depending only on the same row of ``theta``. Optional
        ``supports``: one entry per coordinate, ``"real"``, ``"positive"`` or ``("interval", a,
        b)``; a model without it is treated as all ``"real"``.
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
        Starting point: Laplace mode and curvature with whitening (default), :math:`N(0, I)` in the
        unconstrained space, or explicit flat parameters of the family (which also set the
        whitening: :math:`\hat\eta = \mu`, :math:`W = L`).
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
        Number of flat windows in a row before stopping, >= 1.
    min_steps : int
        Minimum number of steps before the stopping rule may fire, >= 0.
    tol : float
        Gain of the smoothed ELBO (in nats) below which a window is flat whatever its standard
        error, >= 0.
    progress : bool
        Print a line ``step, smoothed ELBO, step size`` every ``print_every`` steps (default: every
        ``4 * window`` steps, 100 with the default window) and a final summary line.
    print_every : int, optional
        Steps between progress lines, >= 1.
    param_tol : float
        Tolerance of the stopping rule on the parameters, > 0: largest movement between windows and
        largest remaining distance to the optimum, in units of q's standard deviations.

    Returns
    -------
    ADVIResult
        With ``.params``, ``.family``, ``.elbo_trace``, ``.mean_cov()`` (unconstrained space) and
        ``.sample(n, rng)`` (constrained space).

    Raises
    ------
    ValueError
        For bad arguments (unknown family, non-positive counts, a model without ``dim`` or
        ``log_joint``, supports that do not match ``dim``, a ``log_joint`` that returns the wrong
        shape or non-real values, or that autograd cannot differentiate).
    NonFiniteELBOError
        A subclass of ``ValueError`` (and of ``FloatingPointError``): at the first step, the model's
        log joint is not finite where q draws (check ``model.supports``); later, the ELBO estimate or
        its gradient became NaN or infinite (the optimisation diverged; retry with a smaller
        ``step_size``).

    Examples
    --------
    >>> from vi_course.models import ConjugateGaussian
    >>> fit = advi(ConjugateGaussian([0.2, 1.1, 0.4]), n_steps=2000)
    >>> mean, cov = fit.mean_cov()
    >>> bool(abs(mean[0] - 0.425) < 0.05)
    True
    """
    # ---- validate everything once; the loop below trusts its inputs
    dim, transform = _check_model(model)
    family = _check_family(family, dim)
    n_steps = _checks.positive_int("n_steps", n_steps)
    n_samples = _checks.positive_int("n_samples", n_samples)
    rng = _checks.generator(seed, name="seed")
    step_size = _checks.positive_scalar("step_size", step_size)
    decay = _checks.positive_scalar("decay", decay, allow_zero=True)
    window = _checks.positive_int("window", window, minimum=2)
    patience = _checks.positive_int("patience", patience)
    min_steps = _checks.positive_int("min_steps", min_steps, minimum=0)
    tol = _checks.positive_scalar("tol", tol, allow_zero=True)
    param_tol = _checks.positive_scalar("param_tol", param_tol)
    progress = _checks.flag("progress", progress)
    if gradient not in _GRADIENTS:
        raise ValueError(f"gradient must be one of {_GRADIENTS}, got {gradient!r}")
    if isinstance(init, str) and init not in _INITS:
        raise ValueError(f"init must be one of {_INITS} or an array of flat parameters, got {init!r}")
    print_every = 4 * window if print_every is None else _checks.positive_int("print_every", print_every)
    log_joint = model.log_joint

    # ---- check the model's output and its gradient once, with a clear message
    for n_probe in (2, 3):          # two batch sizes: an output of fixed length fails one of them
        try:
            probe = log_joint(transform.inverse(np.zeros((n_probe, dim))))
        except (TypeError, ValueError, IndexError, AttributeError, KeyError) as exc:
            raise ValueError(f"model.log_joint failed on a batch of shape ({n_probe}, {dim}): "
                             f"{type(exc).__name__}: {exc}") from exc
        if np.shape(probe) != (n_probe,):
            raise ValueError(f"model.log_joint must map (n, {dim}) to (n,); for n={n_probe} it "
                             f"returned shape {np.shape(probe)}")
        _checks.output_array("model.log_joint", probe)
    target = unconstrained_value_and_grad(log_joint, transform)
    try:
        with np.errstate(all="ignore"):
            target(np.zeros((2, dim)))
    except (TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ValueError("model.log_joint could not be differentiated by autograd (write it with "
                         "autograd.numpy, without np.asarray or in-place assignment): "
                         f"{type(exc).__name__}: {exc}") from exc

    # ---- starting point and preconditioned coordinates; the optimiser starts at a = init_params()
    if isinstance(init, str):
        if init == "laplace":
            mode, precision = _laplace_start(target, dim)
            scale, chol = _laplace_factors(precision)
        else:
            mode, scale, chol = np.zeros(dim), np.ones(dim), np.eye(dim)
    else:
        try:
            start = family._check_params(init, allow_batch=False).copy()
        except ValueError as exc:
            raise ValueError(f"init must be 'laplace', 'zero' or flat parameters of the family: {exc}") \
                from None
        mode, chol = family._mu_chol(start)
        mode, chol = np.asarray(mode, dtype=float), np.asarray(chol, dtype=float)
        scale = np.diag(chol).copy()
    if isinstance(family, MeanFieldGaussian):
        chol = np.diag(scale)       # mean-field: W = diag(s) (a full W did not help, see the tests)
    coords = _Coordinates(family, mode, chol, scale)
    a = family.init_params()
    base = coords.params(a)

    closed_form = gradient == "closed_form"
    entropy_grad = np.zeros(family.n_params)
    entropy_grad[coords.log_diag] = 1.0             # H = d/2 (1 + log 2 pi) + sum_j log L_jj
    entropy_const = 0.5 * dim * (1.0 + LOG_2PI)

    optimiser = Adam(robbins_monro(step_size, decay), maximize=True)
    b1, b2, adam_eps, schedule = optimiser.b1, optimiser.b2, optimiser.eps, optimiser.schedule
    m, v = np.zeros(family.n_params), np.zeros(family.n_params)

    trace = np.empty(n_steps)
    n_par = family.n_params
    ring = np.empty((window, n_par))            # the iterates of the current window
    grads = np.empty((window, n_par))           # and their gradients (for the stationarity test)
    window_means = []                           # mean iterate of every completed window
    smoothed, spread, moments, distances = [], [], [], []
    z_grad = float(ndtri(1.0 - 0.025 / n_par))   # family-wise ~5% over the tested coordinates
    stein = coords.meanfield and dim <= STEIN_MAX_DIM
    if stein:
        eta_grads = np.empty((window, dim))     # per-step mean of grad_eta log p~ (mean-field)
        stein_sum = np.zeros((dim, dim))        # sum over the window of E[grad_eta eps^T] / sigma
    stale, converged = 0, False
    t = 0
    for t in range(n_steps):
        eps = rng.standard_normal((n_samples, dim))
        with np.errstate(all="ignore"):
            eta, log_q, aux = coords.draw(a, eps)
            value, grad_eta = target(eta)
            if closed_form:
                # the ADVI page's estimator: (1/K) sum_k log p~(eta_k) + H[q] in closed form
                elbo_value = value.mean() + entropy_const + coords.log_scale_sum(a)
                grad = coords.grad(a, eps, aux, grad_eta, stl=False) + entropy_grad
            else:
                # sticking the landing: path derivative of log p~ - log q, score term dropped
                elbo_value = (value - log_q).mean()
                grad = coords.grad(a, eps, aux, grad_eta, stl=True)
        if (not np.isfinite(elbo_value) or not np.all(np.isfinite(grad))) and t == 0:
            raise NonFiniteELBOError(
                f"advi: model.log_joint (plus the log-Jacobian of the transforms) is not finite at the "
                f"starting draws of q (ELBO estimate {elbo_value}, gradient finite: "
                f"{bool(np.all(np.isfinite(grad)))}): check that it is finite on the whole support "
                f"declared by model.supports ({transform.supports!r}) and does not overflow.")
        if not np.isfinite(elbo_value) or not np.all(np.isfinite(grad)):
            raise NonFiniteELBOError(
                f"advi: the ELBO estimate became non-finite at step {t} (ELBO estimate {elbo_value}, "
                f"gradient finite: {bool(np.all(np.isfinite(grad)))}). The optimisation diverged; "
                f"retry with a smaller step_size (currently {step_size}) or a larger decay, and check "
                "that model.log_joint does not overflow.")
        trace[t] = elbo_value
        slot = t % window
        ring[slot] = a
        grads[slot] = grad
        if stein:
            if slot == 0:
                stein_sum[:] = 0.0
            eta_grads[slot] = grad_eta.mean(axis=0)
            stein_sum += (grad_eta.T @ eps) / (n_samples * aux)   # aux = sigma (mean-field)
        delta, m, v = _adam_ascent_step(grad, m, v, t, schedule(t), b1, b2, adam_eps)
        a = a + delta

        if (t + 1) % window == 0:
            recent = trace[t + 1 - window:t + 1]
            smoothed.append(float(recent.mean()))
            spread.append(float(recent.var(ddof=1)))
            centre = ring.mean(axis=0)
            window_means.append(centre)
            moments.append(coords.mean_sd(centre))
            distances.append(coords.distance(centre, grads, eta_grads if stein else None,
                                             -stein_sum / window if stein else None))
            if len(smoothed) >= 2:
                gain = smoothed[-1] - smoothed[-2]
                se = np.sqrt((spread[-1] + spread[-2]) / window)
                (mu1, sd1), (mu0, sd0) = moments[-1], moments[-2]
                moved = max(np.max(np.abs(mu1 - mu0) / sd1), np.max(np.abs(np.log(sd1 / sd0))))
                flat = gain < max(tol, SIGNIFICANCE_Z * se) and moved < param_tol
                stale = stale + 1 if flat else 0
            if t + 1 >= min_steps and stale >= patience:
                # the averaged iterates that would be returned must also be near the optimum
                last = distances[-patience:]
                dist = np.mean([d_ for d_, _ in last], axis=0)
                dist_se = np.sqrt(np.sum([v_ for _, v_ in last], axis=0)) / patience
                converged = bool(np.all(np.abs(dist) <= np.maximum(param_tol, z_grad * dist_se)))
        if progress and ((t + 1) % print_every == 0):
            recent = trace[max(0, t + 1 - window):t + 1]
            print(f"advi step {t + 1:6d}  smoothed ELBO {np.mean(recent): .6g}  "
                  f"step size {schedule(t):.3g}", flush=True)
        if converged:
            break

    steps = t + 1
    if converged:   # Polyak-Ruppert: average of the iterates of the last `patience` (full) windows
        final_a = np.mean(window_means[-patience:], axis=0)
    else:           # average of the last min(window, steps) iterates
        tail = min(window, steps)
        final_a = ring[(np.arange(steps - tail, steps)) % window].mean(axis=0)
    final = coords.params(final_a)
    if progress:
        status = "converged" if converged else "reached n_steps without converging"
        print(f"advi {status} after {steps} steps; final smoothed ELBO "
              f"{np.mean(trace[max(0, steps - window):steps]): .6g}", flush=True)
    return ADVIResult(params=final, family=family, transform=transform,
                      elbo_trace=trace[:steps].copy(), smoothed_elbo=np.array(smoothed),
                      converged=converged, n_steps=steps, init_params=base)
