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
        try:
            n_arr = _checks.finite_array("n", n)
        except ValueError:
            n_arr = None
        if (n_arr is None or isinstance(n, (bool, np.bool_)) or n_arr.size == 0 or np.any(n_arr < 0)
                or np.any(n_arr != np.floor(n_arr))):
            raise ValueError(f"n must be an integer iteration number >= 0 (or an array of them), got {n!r}")
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
    grad = _checks.finite_array("grad", grad, allow_empty=False)
    if grad.shape != np.shape(reference):
        raise ValueError(f"grad must have the shape of the parameters {np.shape(reference)}, "
                         f"got {grad.shape}")
    return grad


def _state(state, cls, owner):
    """Check that ``state`` is the optimiser's own state (as returned by ``init`` or ``update``)."""
    if not isinstance(state, cls):
        raise ValueError(f"state must be a {cls.__name__} as returned by {owner}.init(params) or "
                         f"{owner}.update(grad, state), got {type(state).__name__}")
    if isinstance(state.step, (bool, np.bool_)) or not isinstance(state.step, (int, np.integer)) \
            or state.step < 0:
        raise ValueError(f"state.step must be an integer >= 0, got {state.step!r}")
    return state


def _step_value(schedule, step):
    raw = schedule(step)
    try:
        value = _checks.real_scalar("step_size", raw)
    except ValueError:
        value = np.nan
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"step_size schedule must return a finite number > 0, got {raw!r} "
                         f"at step {step}")
    return float(value)


def apply(params, delta):
    r"""Return ``params + delta``: apply an optimiser's increment.

    Chapter: Stochastic gradients (the update :math:`\theta_{n+1} = \theta_n + \Delta_n` of lecture
    eq. 45, with :math:`\Delta_n = \mp\gamma_n \hat g_n` from an optimiser's ``update``).

    Parameters
    ----------
    params : array_like
        Current parameters, finite.
    delta : array_like
        Increment of the same shape, finite.

    Returns
    -------
    ndarray
    """
    params = _checks.finite_array("params", params, allow_empty=False)
    delta = _checks.finite_array("delta", delta)
    if delta.shape != params.shape:
        raise ValueError(f"delta must have the shape of params {params.shape}, got {delta.shape}")
    return params + delta


class SGDState(NamedTuple):
    r"""State of :class:`SGD`: the iteration count ``step`` (number of updates done).

    Chapter: Stochastic gradients; ``step`` is the :math:`n` of the step size :math:`\gamma_n` of
    equation ``eq-sg-schedule`` (lecture eq. 48).
    """

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
        self.maximize = _checks.flag("maximize", maximize)

    def init(self, params):
        r"""Initial state for parameters shaped like ``params``: :math:`n = 0`.

        Chapter: Stochastic gradients (the start of the iteration of equation ``eq-sg-sga``,
        lecture eq. 45).

        Parameters
        ----------
        params : array_like
            Starting parameters: finite, at least one entry.

        Returns
        -------
        SGDState
        """
        _checks.finite_array("params", params, allow_empty=False)
        return SGDState(step=0)

    def update(self, grad, state):
        r"""One step of lecture eq. 45: :math:`\Delta_n = \mp\gamma_n \hat g_n`.

        Chapter: Stochastic gradients, equation ``eq-sg-sga`` with the step :math:`\gamma_n` of
        ``eq-sg-schedule``. Add ``delta`` to the parameters (:func:`apply`); the sign is ``-`` for
        ``maximize=False`` (descent on a loss) and ``+`` for ``maximize=True`` (ascent).

        Parameters
        ----------
        grad : array_like
            The gradient estimate :math:`\hat g_n`: finite, at least one entry.
        state : SGDState
            As returned by :meth:`init` or the previous :meth:`update`.

        Returns
        -------
        delta : ndarray
            Shape of ``grad``.
        new_state : SGDState
        """
        state = _state(state, SGDState, "SGD")
        grad = _checks.finite_array("grad", grad, allow_empty=False)
        lr = _step_value(self.schedule, state.step)
        sign = 1.0 if self.maximize else -1.0
        return sign * lr * grad, SGDState(step=state.step + 1)


class AdamState(NamedTuple):
    r"""State of :class:`Adam`: update count ``step`` and the running moments ``m`` and ``v``.

    Chapter: Stochastic gradients, equation ``eq-sg-adam``: ``m`` and ``v`` are :math:`m_t` and
    :math:`v_t`, ``step`` is :math:`t - 1` (the number of updates done).
    """

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
        self.maximize = _checks.flag("maximize", maximize)

    def init(self, params):
        r"""Initial state: :math:`m_0 = v_0 = 0` shaped like ``params``, ``step = 0``.

        Chapter: Stochastic gradients, equation ``eq-sg-adam``.

        Parameters
        ----------
        params : array_like
            Starting parameters: finite, at least one entry.

        Returns
        -------
        AdamState
        """
        params = _checks.finite_array("params", params, allow_empty=False)
        return AdamState(step=0, m=np.zeros_like(params), v=np.zeros_like(params))

    def update(self, grad, state):
        r"""One Adam step :math:`\Delta_t` (class docstring); add ``delta`` to the parameters.

        Chapter: Stochastic gradients, equation ``eq-sg-adam``.

        Parameters
        ----------
        grad : array_like
            Gradient estimate with the shape of the parameters given to :meth:`init`; finite.
        state : AdamState
            As returned by :meth:`init` or the previous :meth:`update`.

        Returns
        -------
        delta : ndarray
        new_state : AdamState
        """
        state = _state(state, AdamState, "Adam")
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
