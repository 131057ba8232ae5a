r"""Gaussian variational families (chapters "Gaussian VI" and "Mean-field VI").

Both families keep *all* their parameters in one flat, unconstrained numpy vector ``params`` so that
optimisers, gradient estimators and :mod:`autograd` treat every family the same way:

=====================  ===============================================  ===========================
family                 layout of ``params``                              ``n_params``
=====================  ===============================================  ===========================
``MeanFieldGaussian``  ``[mu (dim), log_sigma (dim)]``                    ``2 dim``
``FullRankGaussian``   ``[mu (dim), packed lower triangle of L]``         ``dim + dim (dim + 1) / 2``
=====================  ===============================================  ===========================

For the full-rank family :math:`\Sigma = L L^\top` with :math:`L` lower triangular. Its lower
triangle is packed row by row (``L[0,0], L[1,0], L[1,1], L[2,0], ...``) and the diagonal entries are
stored as :math:`\log L_{jj}`, so every real vector is a valid parameter (positive diagonal, hence a
unique Cholesky factor) as long as its log scales lie in [-700, 700], the range in which
:math:`e^{\log L_{jj}}` is a normal double; beyond it the families raise ``ValueError``.

Sampling is reparameterised (lecture eq. 38-39): :math:`z = f_\theta(\epsilon) = \mu + L\epsilon`
with :math:`\epsilon \sim N(0, I)`. ``noise(n, rng)`` draws :math:`\epsilon`;
``sample_from_noise(params, eps)`` is the deterministic, autograd-differentiable map
:math:`f_\theta`; ``sample(params, n, rng)`` does both.

Every method that takes ``params`` also accepts a batch of parameter vectors of shape
``(n, n_params)``, one row per sample (row ``i`` of ``params`` goes with row ``i`` of ``z`` or
``eps``). :mod:`vi_course.gradients` uses this to get per-sample gradients in one backward pass.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np

from . import _checks

__all__ = ["MeanFieldGaussian", "FullRankGaussian", "GaussianFamily"]

LOG_2PI = float(np.log(2.0 * np.pi))
# |log scale| above this is refused: e^700 ~ 1e304 is near the largest double, e^-700 near the
# smallest normal one, and beyond it 0 * inf turns densities into NaN.
LOG_SCALE_LIMIT = 700.0
_SINGULAR = ("params gives a Cholesky factor that is singular in double precision (diagonal entries "
             "tiny next to the off-diagonal ones); rescale the parameters")


def _is_traced(x):
    return type(x).__module__.startswith("autograd")


def _check_log_scales(name, log_scales):
    """``ValueError`` naming ``name`` unless every log scale lies in [-LOG_SCALE_LIMIT, LOG_SCALE_LIMIT]."""
    log_scales = np.asarray(log_scales, dtype=float)
    if np.any(np.abs(log_scales) > LOG_SCALE_LIMIT):
        worst = float(log_scales.flat[np.argmax(np.abs(log_scales))])
        raise ValueError(f"{name} holds a log scale of {worst:g}; log scales must lie in "
                         f"[-{LOG_SCALE_LIMIT:g}, {LOG_SCALE_LIMIT:g}] (scales from e^-{LOG_SCALE_LIMIT:g} to "
                         f"e^{LOG_SCALE_LIMIT:g}): "
                         f"beyond that, exp overflows or underflows double precision")


def _vector(name, value, dim, positive=False):
    """``value`` as a (dim,) float vector; a scalar is broadcast. ``ValueError`` otherwise."""
    arr = _checks.finite_array(name, value, ndim=(0, 1))
    if arr.ndim == 0:
        arr = np.full(dim, float(arr))
    if arr.shape != (dim,):
        raise ValueError(f"{name} must be a scalar or have shape ({dim},), got shape {arr.shape}")
    if positive and np.any(arr < np.finfo(float).tiny):
        raise ValueError(f"{name} must be > 0 (and at least 2.2e-308), got {arr}")
    return arr


class GaussianFamily:
    """Shared machinery of the two Gaussian families (not used directly).

    Chapter: Gaussian VI. Subclasses define the parameter layout; this class validates inputs and
    implements sampling, ``log_prob`` and the entropy from the pair :math:`(\\mu, L)`.
    """

    name = "gaussian"

    def __init__(self, dim):
        self.dim = _checks.positive_int("dim", dim)

    def __repr__(self):
        return f"{type(self).__name__}(dim={self.dim})"

    def __eq__(self, other):
        return type(self) is type(other) and self.dim == other.dim

    def __hash__(self):
        return hash((type(self).__name__, self.dim))

    # ------------------------------------------------------------------ validation
    def _check_params(self, params, allow_batch=True):
        """Return ``params`` as a float array of shape (n_params,) or (n, n_params)."""
        if _is_traced(params):
            shape = np.shape(params)
        else:
            params = _checks.finite_array("params", params, ndim=(1, 2) if allow_batch else 1)
            shape = params.shape
        if len(shape) not in ((1, 2) if allow_batch else (1,)) or shape[-1] != self.n_params:
            raise ValueError(f"params must have shape ({self.n_params},) for {self!r} "
                             f"(layout: {self.layout}), got shape {shape}")
        if not _is_traced(params):
            _check_log_scales("params", self._log_diag(params))
        return params

    def _check_rows(self, name, x, params):
        """Validate a batch ``x`` of shape (n, dim); a batch of params must have the same n."""
        x = _checks.samples(name, x, self.dim)
        if np.ndim(params) == 2 and np.shape(params)[0] != np.shape(x)[0]:
            raise ValueError(f"{name} has {np.shape(x)[0]} rows but params has "
                             f"{np.shape(params)[0]}; a batch of params needs one row per sample")
        return x

    # ------------------------------------------------------------------ sampling
    def noise(self, n, rng):
        r"""Draw the base noise :math:`\epsilon \sim N(0, I)` of the reparameterisation.

        Chapter: Stochastic gradients (lecture eq. 38, :math:`\epsilon \sim q_0`).

        Parameters
        ----------
        n : int
            Number of samples, >= 1.
        rng : numpy.random.Generator or int
            Source of randomness.

        Returns
        -------
        ndarray, shape (n, dim)
        """
        n = _checks.positive_int("n", n)
        rng = _checks.generator(rng)
        return rng.standard_normal((n, self.dim))

    def sample_from_noise(self, params, eps):
        r"""Reparameterised samples :math:`z = \mu + L\epsilon` (lecture eq. 39, multivariate).

        Chapter: Stochastic gradients. Deterministic in ``eps`` and differentiable with respect to
        ``params`` with :mod:`autograd`.

        Parameters
        ----------
        params : array_like, shape (n_params,) or (n, n_params)
        eps : array_like, shape (n, dim)
            Standard normal noise, e.g. from :meth:`noise`.

        Returns
        -------
        ndarray, shape (n, dim)
        """
        params = self._check_params(params)
        eps = self._check_rows("eps", eps, params)
        return self._sample(params, eps)

    def sample(self, params, n, rng):
        r"""Draw ``n`` samples from :math:`q_\theta = N(\mu, L L^\top)` by reparameterisation.

        Chapter: Gaussian VI (lecture eq. 39). Equivalent to
        ``sample_from_noise(params, noise(n, rng))``.

        Parameters
        ----------
        params : array_like, shape (n_params,)
        n : int
            Number of samples, >= 1.
        rng : numpy.random.Generator or int

        Returns
        -------
        ndarray, shape (n, dim)
        """
        params = self._check_params(params, allow_batch=False)
        return self._sample(params, self.noise(n, rng))

    # ------------------------------------------------------------------ densities
    def log_prob(self, params, z):
        r"""Log density :math:`\log N(z; \mu, LL^\top)` for a batch of points.

        Chapter: Gaussian VI (lecture eq. 21 and, for the mean-field family, eq. 55). Computed as
        :math:`-\tfrac12\|L^{-1}(z-\mu)\|^2 - \sum_j \log L_{jj} - \tfrac{d}{2}\log 2\pi`.

        Parameters
        ----------
        params : array_like, shape (n_params,) or (n, n_params)
        z : array_like, shape (n, dim)

        Returns
        -------
        ndarray, shape (n,)
        """
        params = self._check_params(params)
        z = self._check_rows("z", z, params)
        try:
            return self._log_prob(params, z)
        except np.linalg.LinAlgError:
            raise ValueError(_SINGULAR) from None

    def entropy(self, params):
        r"""Closed-form differential entropy :math:`H[q] = \tfrac{d}{2}(1 + \log 2\pi) + \sum_j \log L_{jj}`.

        Chapter: Gaussian VI (the entropy term of the ELBO, lecture section "Making sense of the
        ELBO"; :math:`\tfrac12 \log\det(2\pi e\Sigma)` with :math:`\log\det\Sigma = 2\sum_j\log L_{jj}`).

        Parameters
        ----------
        params : array_like, shape (n_params,) or (n, n_params)

        Returns
        -------
        float (autograd scalar when traced), or ndarray (n,) for a batch of params
        """
        params = self._check_params(params)
        return 0.5 * self.dim * (1.0 + LOG_2PI) + anp.sum(self._log_diag(params), axis=-1)

    def mean_cov(self, params):
        r"""Mean and covariance :math:`(\mu, LL^\top)` of :math:`q_\theta`.

        Chapter: Gaussian VI.

        Parameters
        ----------
        params : array_like, shape (n_params,)

        Returns
        -------
        mean : ndarray, shape (dim,)
        cov : ndarray, shape (dim, dim)
        """
        params = self._check_params(params, allow_batch=False)
        mu, L = self._mu_chol(params)
        return np.array(mu, dtype=float), np.array(anp.dot(L, L.T), dtype=float)

    def grad_log_prob_from_noise(self, params, eps):
        r"""Gradient in :math:`z` of :math:`\log q_\theta(z)` at :math:`z = f_\theta(\epsilon)`: :math:`-L^{-\top}\epsilon`.

        Chapter: Stochastic gradients (the path term of the entropy; used by the "sticking the
        landing" estimator of :mod:`vi_course.advi`). Since :math:`z - \mu = L\epsilon`,
        :math:`\nabla_z \log q = -\Sigma^{-1}(z-\mu) = -L^{-\top}\epsilon`.

        Parameters
        ----------
        params : array_like, shape (n_params,)
        eps : array_like, shape (n, dim)

        Returns
        -------
        ndarray, shape (n, dim)
        """
        params = self._check_params(params, allow_batch=False)
        eps = self._check_rows("eps", eps, params)
        try:
            return self._grad_log_prob_from_noise(params, eps)
        except np.linalg.LinAlgError:
            raise ValueError(_SINGULAR) from None

    def sample_vjp(self, params, eps, cotangent):
        r"""Gradient of :math:`\sum_k c_k \cdot f_\theta(\epsilon_k)` with respect to ``params``.

        Chapter: Stochastic gradients (the chain rule behind lecture eq. 42-43). If ``cotangent``
        holds :math:`c_k = \nabla_z \log p(z_k, D)` at :math:`z_k = f_\theta(\epsilon_k)`, the
        result is :math:`\nabla_\theta \sum_k \log p(f_\theta(\epsilon_k), D)` -- the
        reparameterisation gradient without differentiating through the family. Written out:
        :math:`\partial/\partial\mu = \sum_k c_k` and :math:`\partial/\partial L =
        \sum_k c_k \epsilon_k^\top` (lower triangle), times :math:`L_{jj}` for the log-diagonal.

        Parameters
        ----------
        params : array_like, shape (n_params,)
        eps : array_like, shape (n, dim)
        cotangent : array_like, shape (n, dim)

        Returns
        -------
        ndarray, shape (n_params,)
        """
        params = self._check_params(params, allow_batch=False)
        eps = self._check_rows("eps", eps, params)
        cotangent = self._check_rows("cotangent", cotangent, params)
        if cotangent.shape != eps.shape:
            raise ValueError(f"cotangent must have the shape of eps {eps.shape}, got {cotangent.shape}")
        return self._sample_vjp(params, eps, cotangent)

    # ------------------------------------------------------------------ internals
    def _reparam_terms(self, params, eps):
        r"""Unchecked ``(z, log q(z), grad_z log q(z))`` at :math:`z = \mu + L\epsilon`, one factorisation.

        Chapter: Stochastic gradients (used in the inner loop of :func:`vi_course.advi`). Since the
        whitened residual :math:`L^{-1}(z - \mu)` is :math:`\epsilon` itself,
        :math:`\log q(z) = -\tfrac12\|\epsilon\|^2 - \sum_j \log L_{jj} - \tfrac d2 \log 2\pi`
        needs no triangular solve. ``params``: float array (n_params,); ``eps``: float array (n, dim).
        """
        mu, L = self._mu_chol(params)
        L = np.asarray(L, dtype=float)
        z = mu + eps @ L.T
        log_q = (-0.5 * np.einsum("ij,ij->i", eps, eps) - np.sum(np.log(np.diag(L)))
                 - 0.5 * self.dim * LOG_2PI)
        return z, log_q, self._grad_log_prob_from_noise(params, eps)

    def _log_prob(self, params, z):
        mu, _ = self._split(params)
        white = self._whiten(params, z - mu)
        return (-0.5 * anp.sum(white ** 2, axis=1) - anp.sum(self._log_diag(params), axis=-1)
                - 0.5 * self.dim * LOG_2PI)


class MeanFieldGaussian(GaussianFamily):
    r"""Mean-field (diagonal) Gaussian :math:`q(z) = \prod_j N(z_j; \mu_j, \sigma_j^2)`.

    Chapter: Mean-field VI (lecture eq. 54-55). Parameters are the flat vector
    ``[mu (dim), log_sigma (dim)]``; storing :math:`\log\sigma` keeps every real vector valid
    (log scales in [-700, 700]; the lecture uses the variance :math:`\nu_m = \sigma_m^2`).

    Parameters
    ----------
    dim : int
        Dimension of the latent space, >= 1.

    Attributes
    ----------
    dim : int
    n_params : int
        ``2 * dim``.

    Examples
    --------
    >>> fam = MeanFieldGaussian(2)
    >>> params = fam.pack([0.0, 1.0], [1.0, 2.0])
    >>> fam.mean_cov(params)[1]
    array([[1., 0.],
           [0., 4.]])
    """

    name = "meanfield"
    layout = "[mu (dim), log_sigma (dim)]"

    @property
    def n_params(self):
        r"""Length of the flat parameter vector: ``2 * dim`` (:math:`\mu` and :math:`\log\sigma`).

        Chapter: Mean-field VI, equation ``eq-mf-gaussian`` (one mean and one scale per coordinate).
        """
        return 2 * self.dim

    def pack(self, mean, scale):
        r"""Flat parameters from a mean and per-coordinate standard deviations.

        Chapter: Mean-field VI.

        Parameters
        ----------
        mean : array_like, shape (dim,)
        scale : float or array_like, shape (dim,)
            Standard deviations :math:`\sigma_j > 0`.

        Returns
        -------
        ndarray, shape (2 dim,)
            ``[mean, log(scale)]``.
        """
        mean = _vector("mean", mean, self.dim)
        scale = _vector("scale", scale, self.dim, positive=True)
        _check_log_scales("scale", np.log(scale))
        return np.concatenate([mean, np.log(scale)])

    def unpack(self, params):
        r"""Readable parameters ``(mean, scale)`` with ``scale`` the standard deviations.

        Chapter: Mean-field VI, equation ``eq-mf-gaussian``: :math:`\sigma_j = e^{\log\sigma_j}`.

        Parameters
        ----------
        params : array_like, shape (2 dim,)

        Returns
        -------
        mean : ndarray, shape (dim,)
        scale : ndarray, shape (dim,)
        """
        params = self._check_params(params, allow_batch=False)
        mu, log_s = self._split(params)
        return np.array(mu, dtype=float), np.exp(np.array(log_s, dtype=float))

    def init_params(self, mean=None, scale=1.0):
        r"""Starting parameters: mean ``mean`` (default 0) and standard deviation ``scale`` (default 1).

        Chapter: Mean-field VI, equation ``eq-mf-gaussian`` with :math:`\mu = ` ``mean`` and
        :math:`\sigma_j = ` ``scale``.

        Parameters
        ----------
        mean : array_like, shape (dim,), optional
            Finite means (a scalar is broadcast); default zeros.
        scale : float or array_like, shape (dim,)
            Standard deviations, > 0.

        Returns
        -------
        ndarray, shape (2 dim,)
        """
        return self.pack(np.zeros(self.dim) if mean is None else mean, scale)

    def from_mean_cov(self, mean, cov):
        r"""Mean-field parameters with the given mean and the diagonal of ``cov`` as variances.

        Chapter: Mean-field VI, equation ``eq-mf-gaussian`` with :math:`\sigma_j^2 = \mathrm{cov}_{jj}`.
        Off-diagonal entries of ``cov`` are ignored.

        Parameters
        ----------
        mean : array_like, shape (dim,)
        cov : float, array_like of shape (dim,) or (dim, dim)
            A common variance, a vector of variances or a covariance matrix; the variances must be
            finite and > 0.

        Returns
        -------
        ndarray, shape (2 dim,)
        """
        cov = _checks.finite_array("cov", cov, ndim=(0, 1, 2))
        var = np.diag(cov) if cov.ndim == 2 else cov
        if np.any(var <= 0):
            raise ValueError(f"cov must have positive variances on its diagonal, got {var}")
        return self.pack(mean, np.sqrt(var))

    def _split(self, params):
        return params[..., :self.dim], params[..., self.dim:]

    def _log_diag(self, params):
        return params[..., self.dim:]

    def _sample(self, params, eps):
        mu, log_s = self._split(params)
        return mu + anp.exp(log_s) * eps

    def _whiten(self, params, r):
        return r * anp.exp(-self._log_diag(params))

    def _grad_log_prob_from_noise(self, params, eps):
        return -eps * np.exp(-params[self.dim:])

    def _reparam_terms(self, params, eps):
        mu, log_s = params[:self.dim], params[self.dim:]
        sigma = np.exp(log_s)
        log_q = -0.5 * np.einsum("ij,ij->i", eps, eps) - (np.sum(log_s) + 0.5 * self.dim * LOG_2PI)
        return mu + sigma * eps, log_q, -eps / sigma

    def _sample_vjp(self, params, eps, cot):
        sigma = np.exp(params[self.dim:])
        return np.concatenate([cot.sum(axis=0), (cot * eps).sum(axis=0) * sigma])

    def _mu_chol(self, params):
        mu, log_s = self._split(params)
        return mu, anp.diag(anp.exp(log_s))


class FullRankGaussian(GaussianFamily):
    r"""Full-rank Gaussian :math:`q(z) = N(z; \mu, LL^\top)` with :math:`L` lower triangular.

    Chapter: ADVI (the full-rank family of the ADVI page, with :math:`z = \mu + L\epsilon`,
    :math:`\epsilon \sim N(0, I)`; the page's :math:`\mu + L^\top\epsilon` with
    :math:`\epsilon \sim N(1_d, I)` is wrong, see the errata). Parameters are the flat vector
    ``[mu (dim), packed lower triangle of L]``: the triangle is packed row by row and its diagonal is
    stored as :math:`\log L_{jj}`, so there are ``dim (dim + 1) / 2`` of them (the page counts all
    :math:`d^2` entries of :math:`L`).

    Parameters
    ----------
    dim : int
        Dimension of the latent space, >= 1.

    Attributes
    ----------
    dim : int
    n_params : int
        ``dim + dim * (dim + 1) // 2``.

    Examples
    --------
    >>> fam = FullRankGaussian(2)
    >>> params = fam.from_mean_cov([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]])
    >>> np.round(fam.mean_cov(params)[1], 12)
    array([[1. , 0.5],
           [0.5, 1. ]])
    """

    name = "fullrank"
    layout = "[mu (dim), lower triangle of L row by row with log diagonal (dim (dim + 1) / 2)]"

    def __init__(self, dim):
        super().__init__(dim)
        d = self.dim
        rows, cols = np.tril_indices(d)
        self._rows, self._cols = rows, cols
        self.n_tri = rows.size
        # is_diag[k]: is packed entry k a diagonal entry (stored as its log)?
        self._is_diag = (rows == cols).astype(float)
        self._diag_pos = np.flatnonzero(rows == cols)
        self._diag_rc = np.arange(d)
        # scatter matrix: flat row-major L (d*d,) = S @ packed (n_tri,)
        scatter = np.zeros((d * d, self.n_tri))
        scatter[rows * d + cols, np.arange(self.n_tri)] = 1.0
        self._scatter_T = scatter.T.copy()

    @property
    def n_params(self):
        r"""Length of the flat parameter vector: ``dim + dim (dim + 1) / 2`` (:math:`\mu` and the triangle of :math:`L`).

        Chapter: ADVI, equation ``eq-advi-reparam`` (:math:`\Sigma = LL^\top` with :math:`L` lower
        triangular).
        """
        return self.dim + self.n_tri

    def pack(self, mean, chol):
        r"""Flat parameters from a mean and a lower-triangular Cholesky factor with positive diagonal.

        Chapter: ADVI (full-rank family).

        Parameters
        ----------
        mean : array_like, shape (dim,)
        chol : array_like, shape (dim, dim)
            Lower-triangular :math:`L` with :math:`L_{jj} > 0` (entries above the diagonal must be 0).

        Returns
        -------
        ndarray, shape (n_params,)
        """
        mean = _vector("mean", mean, self.dim)
        chol = _checks.finite_array("chol", chol, ndim=2)
        if chol.shape != (self.dim, self.dim):
            raise ValueError(f"chol must have shape ({self.dim}, {self.dim}), got {chol.shape}")
        if np.any(np.triu(chol, 1) != 0):
            raise ValueError("chol must be lower triangular (zeros above the diagonal)")
        if np.any(np.diag(chol) <= 0):
            raise ValueError(f"chol must have a positive diagonal, got {np.diag(chol)}")
        _check_log_scales("chol", np.log(np.diag(chol)))
        packed = chol[self._rows, self._cols].copy()
        packed[self._diag_pos] = np.log(packed[self._diag_pos])
        return np.concatenate([mean, packed])

    def unpack(self, params):
        r"""Readable parameters ``(mean, chol)`` with ``chol`` the lower-triangular :math:`L`.

        Chapter: ADVI (full-rank family), equation ``eq-advi-reparam``.

        Parameters
        ----------
        params : array_like, shape (n_params,)

        Returns
        -------
        mean : ndarray, shape (dim,)
        chol : ndarray, shape (dim, dim)
        """
        params = self._check_params(params, allow_batch=False)
        mu, L = self._mu_chol(params)
        return np.array(mu, dtype=float), np.array(L, dtype=float)

    def from_mean_cov(self, mean, cov):
        r"""Parameters of :math:`N(\text{mean}, \text{cov})`; ``cov`` must be symmetric positive definite.

        Chapter: ADVI (full-rank family), equation ``eq-advi-reparam``: :math:`L` is the Cholesky
        factor of ``cov``.

        Parameters
        ----------
        mean : array_like, shape (dim,)
        cov : float or array_like, shape (dim, dim)
            A common variance (times the identity) or a symmetric positive-definite matrix.

        Returns
        -------
        ndarray, shape (n_params,)
        """
        cov = _checks.finite_array("cov", cov, ndim=(0, 2))
        cov = cov * np.eye(self.dim) if cov.ndim == 0 else cov
        if cov.shape != (self.dim, self.dim) or not np.allclose(cov, cov.T):
            raise ValueError(f"cov must be a symmetric ({self.dim}, {self.dim}) matrix, got shape {cov.shape}")
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError("cov must be positive definite") from None
        return self.pack(mean, chol)

    def init_params(self, mean=None, scale=1.0):
        r"""Starting parameters: mean ``mean`` (default 0) and :math:`L = \mathrm{diag}(\text{scale})`.

        Chapter: ADVI.

        Parameters
        ----------
        mean : array_like, shape (dim,), optional
        scale : float or array_like, shape (dim,)
            Standard deviations on the diagonal of :math:`L`, > 0.

        Returns
        -------
        ndarray, shape (n_params,)
        """
        scale = _vector("scale", scale, self.dim, positive=True)
        _check_log_scales("scale", np.log(scale))
        return self.pack(np.zeros(self.dim) if mean is None else mean, np.diag(scale))

    def _split(self, params):
        return params[..., :self.dim], params[..., self.dim:]

    def _log_diag(self, params):
        return params[..., self.dim + self._diag_pos]

    def _chol(self, params):
        packed = params[..., self.dim:]
        # exponentiate the diagonal entries only; exp(0) * 0 keeps off-diagonal gradients finite
        entries = packed * (1.0 - self._is_diag) + anp.exp(packed * self._is_diag) * self._is_diag
        flat = anp.dot(entries, self._scatter_T)
        return anp.reshape(flat, np.shape(params)[:-1] + (self.dim, self.dim))

    def _mu_chol(self, params):
        return params[:self.dim], self._chol(params)

    def _sample(self, params, eps):
        mu, _ = self._split(params)
        L = self._chol(params)
        if np.ndim(params) == 1:
            return mu + anp.dot(eps, anp.transpose(L))
        return mu + anp.einsum("nij,nj->ni", L, eps)

    def _chol_numpy(self, params):
        """Plain-numpy :math:`L` from flat parameters (n_params,): no autograd, no validation."""
        d = self.dim
        L = np.zeros((d, d))
        packed = params[d:]
        L[self._rows, self._cols] = packed
        L[self._diag_rc, self._diag_rc] = np.exp(packed[self._diag_pos])
        return L

    def _grad_log_prob_from_noise(self, params, eps):
        L = self._chol_numpy(np.asarray(params, dtype=float))
        # numpy's solve: scipy's solve_triangular is ~1000x slower on tiny matrices here
        return -np.linalg.solve(L.T, eps.T).T

    def _reparam_terms(self, params, eps):
        d = self.dim
        L = self._chol_numpy(params)
        log_diag = params[d + self._diag_pos]
        z = params[:d] + eps @ L.T
        log_q = -0.5 * np.einsum("ij,ij->i", eps, eps) - (np.sum(log_diag) + 0.5 * d * LOG_2PI)
        # rows of -L^{-T} eps_k: eps_k^T L^{-1}; one small inverse instead of a solve per call
        return z, log_q, -(eps @ np.linalg.inv(L))

    def _sample_vjp(self, params, eps, cot):
        grad_L = cot.T @ eps                       # d/dL_jk of sum_k c_k . (L eps_k)
        packed = grad_L[self._rows, self._cols]
        packed[self._diag_pos] *= np.exp(params[self.dim + self._diag_pos])   # chain rule for log L_jj
        return np.concatenate([cot.sum(axis=0), packed])

    def _whiten(self, params, r):
        L = self._chol(params)
        if np.ndim(params) == 1:
            return anp.transpose(anp.linalg.solve(L, anp.transpose(r)))
        return anp.linalg.solve(L, r[:, :, None])[:, :, 0]
