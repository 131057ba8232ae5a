r"""Step-size schedules and small stochastic optimisers (chapter "Stochastic gradients").

Sign convention: an optimiser's ``update(grad, state)`` returns ``(delta, new_state)`` where
``delta`` is the increment to **add** to the parameters (``params + delta``, see :func:`apply`).

* ``maximize=False`` (default, like deep-learning libraries): ``grad`` is the gradient of a loss
  such as :func:`vi_course.elbo.negative_elbo` and ``delta`` points **downhill** (descent).
* ``maximize=True``: ``grad`` is the gradient of an objective such as the ELBO (what
  :mod:`vi_course.gradients` returns) and ``delta`` points **uphill** (ascent).

The optimisers are pure: the state is an immutable :class:`~typing.NamedTuple` and ``update``
never modifies its inputs, in the style of the init/update pairs of optax and blackjax.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _checks

__all__ = ["robbins_monro", "RobbinsMonroSchedule", "SGD", "SGDState", "Adam", "AdamState",
           "apply"]


class RobbinsMonroSchedule:
    r"""Step-size schedule :math:`\gamma_n = \alpha / (1 + \delta n)` (lecture eq. 48).

    Chapter: Stochastic gradients. Build it with :func:`robbins_monro`. Calling it with an
    iteration number :math:`n \ge 0` (an int or an integer array) returns :math:`\gamma_n`.

    Attributes
    ----------
    alpha : float
        Initial step size :math:`\gamma_0 = \alpha > 0`.
    delta : float
        Decay rate :math:`\delta \ge 0` (``0`` gives a constant step).
    """

    def __init__(self, alpha, delta):
        self.alpha = _checks.positive_scalar("alpha", alpha)
        self.delta = _checks.positive_scalar("delta", delta, allow_zero=True)

    def __repr__(self):
        return f"robbins_monro(alpha={self.alpha}, delta={self.delta})"

    def __call__(self, n):
        if isinstance(n, int) and not isinstance(n, bool) and n >= 0:   # fast path
            return self.alpha / (1.0 + self.delta * n)
        n_arr = np.asarray(n)
        if not np.issubdtype(n_arr.dtype, np.number) or np.any(n_arr < 0) or np.any(
                n_arr != np.floor(n_arr)):
            raise ValueError(f"n must be an integer iteration number >= 0, got {n!r}")
        value = self.alpha / (1.0 + self.delta * n_arr.astype(float))
        return float(value) if value.ndim == 0 else value


def robbins_monro(alpha, delta):
    r"""Robbins-Monro step-size schedule :math:`\gamma_n = \alpha / (1 + \delta n)`.

    Chapter: Stochastic gradients (lecture eq. 48). For :math:`\delta > 0` it satisfies the
    Robbins-Monro conditions :math:`\sum_n \gamma_n = \infty` and :math:`\sum_n \gamma_n^2 < \infty`
    (lecture eq. 46-47; the lecture prints the second as ":math:`\le \infty`", which every sequence
    satisfies). With :math:`\delta = 0` the step is constant and the second condition fails.

    Parameters
    ----------
    alpha : float
        Initial step size, > 0.
    delta : float
        Decay rate, >= 0.

    Returns
    -------
    RobbinsMonroSchedule
        A callable ``n -> alpha / (1 + delta * n)`` for ``n = 0, 1, 2, ...``.

    Examples
    --------
    >>> schedule = robbins_monro(0.1, 1.0)
    >>> schedule(0), schedule(1), schedule(9)
    (0.1, 0.05, 0.01)
    """
    return RobbinsMonroSchedule(alpha, delta)


def _schedule(step_size):
    """A callable ``n -> step size`` from a positive number or a callable schedule."""
    if callable(step_size):
        return step_size
    value = _checks.positive_scalar("step_size", step_size)
    return lambda n: value


def _grad_like(grad, reference):
    grad = _checks.finite_array("grad", grad)
    if grad.shape != np.shape(reference):
        raise ValueError(f"grad must have the shape of the parameters {np.shape(reference)}, "
                         f"got {grad.shape}")
    return grad


def _step_value(schedule, step):
    value = schedule(step)
    if not (np.isscalar(value) or np.ndim(value) == 0) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"step_size schedule must return a finite number > 0, got {value!r} "
                         f"at step {step}")
    return float(value)


def apply(params, delta):
    """Return ``params + delta``: apply an optimiser's increment (chapter: Stochastic gradients)."""
    return np.asarray(params, dtype=float) + np.asarray(delta, dtype=float)


class SGDState(NamedTuple):
    """State of :class:`SGD`: the iteration count ``step`` (number of updates done)."""

    step: int


class SGD:
    r"""Plain stochastic gradient steps :math:`\theta_{n+1} = \theta_n \mp \gamma_n \hat g_n`.

    Chapter: Stochastic gradients (lecture eq. 45, with the step :math:`\gamma_n` of eq. 48).

    Parameters
    ----------
    step_size : float or callable
        A constant :math:`\gamma > 0`, or a schedule ``n -> gamma_n`` such as
        :func:`robbins_monro`.
    maximize : bool
        ``False``: ``grad`` is a loss gradient, the increment is :math:`-\gamma_n \hat g` (descent).
        ``True``: ``grad`` is an objective gradient (e.g. the ELBO's), the increment is
        :math:`+\gamma_n \hat g` (ascent).

    Examples
    --------
    >>> opt = SGD(0.1)
    >>> params = np.array([1.0]); state = opt.init(params)
    >>> delta, state = opt.update(2 * params, state)    # gradient of the loss params**2
    >>> apply(params, delta)
    array([0.8])
    """

    def __init__(self, step_size=0.01, maximize=False):
        self.schedule = _schedule(step_size)
        self.maximize = bool(maximize)

    def init(self, params):
        """Initial state for parameters shaped like ``params`` (chapter: Stochastic gradients)."""
        _checks.finite_array("params", params)
        return SGDState(step=0)

    def update(self, grad, state):
        """Return ``(delta, new_state)``; add ``delta`` to the parameters (see class docstring)."""
        grad = _checks.finite_array("grad", grad)
        lr = _step_value(self.schedule, state.step)
        sign = 1.0 if self.maximize else -1.0
        return sign * lr * grad, SGDState(step=state.step + 1)


class AdamState(NamedTuple):
    """State of :class:`Adam`: update count, first-moment and second-moment running averages."""

    step: int
    m: np.ndarray
    v: np.ndarray


class Adam:
    r"""Adam (Kingma and Ba, 2015): per-coordinate steps scaled by running gradient moments.

    Chapter: Stochastic gradients (the optimiser the lecture recommends after eq. 48). With
    :math:`t = n + 1`:

    .. math::

        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,

        \Delta_t = \mp\gamma_n \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t)} + \varepsilon}.

    Parameters
    ----------
    step_size : float or callable
        Constant :math:`\gamma > 0` or a schedule ``n -> gamma_n`` (e.g. :func:`robbins_monro`).
    b1, b2 : float
        Moment decay rates in [0, 1).
    eps : float
        Small constant > 0 in the denominator.
    maximize : bool
        ``False``: descend the loss whose gradient is passed; ``True``: ascend the objective
        (e.g. the ELBO) whose gradient is passed.
    """

    def __init__(self, step_size=0.01, b1=0.9, b2=0.999, eps=1e-8, maximize=False):
        self.schedule = _schedule(step_size)
        for name, value in (("b1", b1), ("b2", b2)):
            value = _checks.positive_scalar(name, value, allow_zero=True)
            if value >= 1:
                raise ValueError(f"{name} must lie in [0, 1), got {value}")
        self.b1, self.b2 = float(b1), float(b2)
        self.eps = _checks.positive_scalar("eps", eps)
        self.maximize = bool(maximize)

    def init(self, params):
        """Initial state: zero moments shaped like ``params`` (chapter: Stochastic gradients)."""
        params = _checks.finite_array("params", params)
        return AdamState(step=0, m=np.zeros_like(params), v=np.zeros_like(params))

    def update(self, grad, state):
        """Return ``(delta, new_state)``; add ``delta`` to the parameters (see class docstring)."""
        grad = _grad_like(grad, state.m)
        lr = _step_value(self.schedule, state.step)
        t = state.step + 1
        m = self.b1 * state.m + (1.0 - self.b1) * grad
        v = self.b2 * state.v + (1.0 - self.b2) * grad ** 2
        m_hat = m / (1.0 - self.b1 ** t)
        v_hat = v / (1.0 - self.b2 ** t)
        sign = 1.0 if self.maximize else -1.0
        delta = sign * lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return delta, AdamState(step=t, m=m, v=v)
