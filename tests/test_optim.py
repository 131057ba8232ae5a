"""Tests of vi_course.optim (chapter Stochastic gradients: lecture eqs. 45-48 and Adam)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vi_course.optim import SGD, Adam, AdamState, SGDState, apply, robbins_monro


@settings(max_examples=30, deadline=None, derandomize=True)
@given(alpha=st.floats(1e-4, 10.0), delta=st.floats(0.0, 5.0), n=st.integers(0, 10 ** 6))
def test_schedule_values(alpha, delta, n):
    schedule = robbins_monro(alpha, delta)
    assert schedule(0) == pytest.approx(alpha)
    assert schedule(n) == pytest.approx(alpha / (1 + delta * n), rel=1e-12)
    assert schedule(n + 1) <= schedule(n)
    np.testing.assert_allclose(schedule(np.array([0, n])), [alpha, alpha / (1 + delta * n)], rtol=1e-12)


def test_schedule_examples_and_robbins_monro_conditions():
    s = robbins_monro(0.1, 1.0)
    assert (s(0), s(1), s(9)) == (0.1, 0.05, 0.01)
    # partial sums: sum gamma_n grows like log N (diverges); sum gamma_n^2 stays bounded
    n = np.arange(10 ** 6)
    g = s(n)
    assert g[: 10 ** 6].sum() - g[: 10 ** 3].sum() == pytest.approx(0.1 * np.log(1000), rel=1e-3)
    assert (g ** 2).sum() < 0.1 ** 2 * np.pi ** 2 / 6 + 0.1 ** 2


def test_schedule_bad_input():
    for alpha, delta in [(0, 1), (-1, 1), (np.nan, 1), (1, -0.1), (1, np.inf), ("a", 1)]:
        with pytest.raises(ValueError, match="alpha|delta"):
            robbins_monro(alpha, delta)
    s = robbins_monro(1, 1)
    for n in (-1, 1.5, "3"):
        with pytest.raises(ValueError, match="n must"):
            s(n)


def quadratic(center, scales):
    """Loss 0.5 * sum(scales * (x - center)^2) and its gradient."""
    def loss(x):
        return 0.5 * np.sum(scales * (x - center) ** 2)

    def grad(x):
        return scales * (x - center)

    return loss, grad


@pytest.mark.parametrize("make", [
    lambda: SGD(0.1),
    lambda: SGD(robbins_monro(0.15, 0.001)),
    lambda: Adam(0.1),
    lambda: Adam(robbins_monro(0.2, 0.01)),
])
def test_descent_minimises_a_quadratic(make):
    center, scales = np.array([3.0, -2.0, 0.5]), np.array([1.0, 4.0, 0.5])
    loss, grad = quadratic(center, scales)
    opt = make()
    x = np.zeros(3)
    state = opt.init(x)
    start = loss(x)
    for _ in range(2000):
        delta, state = opt.update(grad(x), state)
        x = apply(x, delta)
    assert loss(x) < 1e-6 * start
    np.testing.assert_allclose(x, center, atol=2e-3)


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_ascent_mode_maximises(cls):
    center, scales = np.array([1.0, -1.0]), np.array([1.0, 2.0])
    _, grad = quadratic(center, scales)
    opt = cls(0.1, maximize=True)
    x = np.zeros(2)
    state = opt.init(x)
    for _ in range(2000):
        # gradient of the objective -loss: ascent must reach the maximiser
        delta, state = opt.update(-grad(x), state)
        x = x + delta
    np.testing.assert_allclose(x, center, atol=2e-3)
    # and the same optimiser in descent mode would run away from it
    opt = cls(0.1, maximize=False)
    x, state = np.zeros(2), opt.init(np.zeros(2))
    for _ in range(50):
        delta, state = opt.update(-grad(x), state)
        x = x + delta
    assert np.linalg.norm(x - center) > np.linalg.norm(center)


def test_robbins_monro_sgd_converges_on_a_noisy_gradient():
    """With gamma_n = a / (1 + d n) the iterates converge despite gradient noise (eq. 45-48)."""
    rng = np.random.default_rng(0)
    center = np.array([2.0, -1.0])
    opt = SGD(robbins_monro(0.5, 0.05))
    x = np.zeros(2)
    state = opt.init(x)
    for _ in range(20_000):
        noisy = (x - center) + rng.normal(scale=1.0, size=2)
        delta, state = opt.update(noisy, state)
        x = x + delta
    # stationary spread ~ sqrt(gamma_n / 2) ~ 0.02 at the end
    np.testing.assert_allclose(x, center, atol=0.1)


def test_updates_are_pure_and_state_is_a_named_tuple():
    opt = Adam(0.1)
    x = np.array([1.0, 2.0])
    state = opt.init(x)
    assert isinstance(state, AdamState) and state.step == 0
    g = np.array([0.5, -0.25])
    delta1, new = opt.update(g, state)
    delta2, _ = opt.update(g, state)
    np.testing.assert_array_equal(delta1, delta2)      # same inputs, same output
    np.testing.assert_array_equal(state.m, 0.0)        # input state untouched
    assert new.step == 1
    # bias correction: the first Adam step has length step_size in every coordinate
    np.testing.assert_allclose(delta1, -0.1 * np.sign(g), rtol=1e-6)
    sgd = SGD(0.5)
    s0 = sgd.init(x)
    assert isinstance(s0, SGDState)
    d, s1 = sgd.update(g, s0)
    np.testing.assert_allclose(d, -0.5 * g)
    assert s1.step == 1 and s0.step == 0


def test_optimiser_bad_input():
    with pytest.raises(ValueError, match="step_size"):
        SGD(0.0)
    with pytest.raises(ValueError, match="step_size"):
        Adam(-1.0)
    with pytest.raises(ValueError, match="b1"):
        Adam(0.1, b1=1.0)
    with pytest.raises(ValueError, match="b2"):
        Adam(0.1, b2=-0.5)
    with pytest.raises(ValueError, match="eps"):
        Adam(0.1, eps=0)
    opt = Adam(0.1)
    state = opt.init(np.zeros(3))
    with pytest.raises(ValueError, match="grad"):
        opt.update(np.zeros(2), state)
    with pytest.raises(ValueError, match="grad"):
        opt.update(np.array([0.0, np.nan, 1.0]), state)
    with pytest.raises(ValueError, match="params"):
        opt.init(np.array([np.inf]))
    bad_schedule = SGD(lambda n: -0.1)
    with pytest.raises(ValueError, match="schedule"):
        bad_schedule.update(np.zeros(2), bad_schedule.init(np.zeros(2)))


# --------------------------------------------------------------------------------------------------
# bad input, table-driven (tests/bad_inputs.py)

from bad_inputs import baselines, cases, check_accepts, check_rejects, spec  # noqa: E402

_SCHEDULE = robbins_monro(0.1, 0.01)
_ADAM, _SGD = Adam(0.1), SGD(0.1)
_BAD_STATE = ("values", [None, "abc", (0, 1), SGDState(step=0), AdamState(step=-1, m=np.zeros(2), v=np.zeros(2)),
                         object()])

BAD_INPUT = [
    spec("robbins_monro", robbins_monro, dict(alpha=0.1, delta=0.01), dict(alpha="pos", delta="nonneg")),
    spec("schedule(n)", lambda n: _SCHEDULE(n), dict(n=3),       # n may also be an array of counts
         dict(n=("values", [-1, 2.5, np.nan, np.inf, "3", None, True, np.array([1, -2]), np.array([]), object()]))),
    spec("SGD", SGD, dict(step_size=0.1, maximize=False), dict(step_size="pos", maximize="bool")),
    spec("Adam", Adam, dict(step_size=0.1, b1=0.9, b2=0.999, eps=1e-8, maximize=True),
         dict(step_size="pos", eps="pos", maximize="bool", b1=("values", [1.0, -0.1, np.nan, "a", None, True]),
              b2=("values", [1.0, -0.1, np.nan, "a", None]))),
    spec("Adam.init", _ADAM.init, dict(params=np.zeros(2)),    # parameters of any shape
         dict(params=("values", [np.full(2, np.nan), None, "abc", np.zeros(0), np.zeros(2, complex), object()]))),
    spec("Adam.update", _ADAM.update, dict(grad=np.zeros(2), state=_ADAM.init(np.zeros(2))),
         dict(grad=("params", 2), state=_BAD_STATE)),
    spec("SGD.init", _SGD.init, dict(params=np.zeros(2)), dict(params=("values", [np.full(2, np.nan), None, "abc",
                                                                                  np.zeros(0), object()]))),
    spec("SGD.update", _SGD.update, dict(grad=np.zeros(2), state=_SGD.init(np.zeros(2))),
         dict(grad=("values", [np.full(2, np.nan), None, "abc", np.zeros(0), np.zeros(2, complex)]),
              state=("values", [None, "abc", AdamState(step=0, m=np.zeros(2), v=np.zeros(2)), SGDState(step=1.5)]))),
    spec("apply", apply, dict(params=np.zeros(2), delta=np.zeros(2)),
         dict(params=("params", 2), delta=("params", 2))),
]


@pytest.mark.parametrize("fn, kwargs", baselines(BAD_INPUT))
def test_bad_input_table_baselines_work(fn, kwargs):
    check_accepts(fn, kwargs)


@pytest.mark.parametrize("fn, kwargs, name", cases(BAD_INPUT))
def test_bad_input_table(fn, kwargs, name):
    check_rejects(fn, kwargs, name)


@pytest.mark.parametrize("bad_schedule", [lambda n: "0.1", lambda n: None, lambda n: np.nan, lambda n: [0.1, 0.2]])
def test_a_schedule_returning_garbage_is_rejected(bad_schedule):
    opt = Adam(bad_schedule)
    with pytest.raises(ValueError, match="schedule"):
        opt.update(np.ones(2), opt.init(np.zeros(2)))
