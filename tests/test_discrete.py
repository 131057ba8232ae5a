"""Tests of vi_course.discrete (chapter REINFORCE): discrete families, exact enumeration, REINFORCE.

Exact answers are computed here independently of the library: by explicit loops over the states,
with scipy.stats distributions, by autograd and by finite differences.
"""
import autograd
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from vi_course import discrete as D
from vi_course.families import MeanFieldGaussian


def categorical_problem():
    """A Categorical(5) q at a non-uniform point and a fixed table of log joint values."""
    fam = D.Categorical(5)
    params = np.array([0.3, -1.0, 0.8, 0.0, -0.4])
    table = np.array([-3.0, -1.2, -2.5, -0.7, -4.0]) - 20.0      # offset: log p(D) around -20

    def log_joint(z):
        return table[np.asarray(z)[:, 0].astype(int)]

    return fam, params, table, log_joint


def bernoulli_problem():
    """A MeanFieldBernoulli(3) q and a log joint with correlated binary latents."""
    fam = D.MeanFieldBernoulli(3)
    params = fam.pack([0.3, 0.6, 0.8])

    def log_joint(z):
        z = np.asarray(z, dtype=float)
        return -10.0 + 1.5 * z[:, 0] - 0.5 * z[:, 1] + 2.0 * z[:, 0] * z[:, 2] - 1.0 * z[:, 1] * z[:, 2]

    return fam, params, log_joint


def all_problems():
    fam, params, _, lj = categorical_problem()
    bfam, bparams, blj = bernoulli_problem()
    return [pytest.param(fam, params, lj, id="categorical"),
            pytest.param(bfam, bparams, blj, id="bernoulli")]


def brute_force_probs(fam, params):
    """q over the support, written out from the definitions with explicit loops."""
    states = fam.support()
    if isinstance(fam, D.Categorical):
        w = np.exp(params - params.max())
        return states, np.array([w[k] / w.sum() for k in states[:, 0]])
    p = 1.0 / (1.0 + np.exp(-params))
    return states, np.array([np.prod([p[j] if s[j] else 1 - p[j] for j in range(fam.dim)])
                             for s in states])


# --- the families --------------------------------------------------------------------------------


@pytest.mark.parametrize("fam,params,log_joint", all_problems())
def test_log_prob_matches_the_definition_and_is_normalised(fam, params, log_joint):
    states, probs = brute_force_probs(fam, params)
    np.testing.assert_allclose(np.exp(fam.log_prob(params, states)), probs, rtol=1e-12)
    np.testing.assert_allclose(fam.probs_of_support(params), probs, rtol=1e-12)
    assert logsumexp(fam.log_prob(params, states)) == pytest.approx(0.0, abs=1e-12)


def test_bernoulli_log_prob_matches_scipy():
    fam = D.MeanFieldBernoulli(2)
    params = fam.pack([0.2, 0.7])
    z = np.array([[0, 1], [1, 1], [1, 0]])
    expected = stats.bernoulli(0.2).logpmf(z[:, 0]) + stats.bernoulli(0.7).logpmf(z[:, 1])
    np.testing.assert_allclose(fam.log_prob(params, z), expected, rtol=1e-12)


@pytest.mark.parametrize("fam,params,log_joint", all_problems())
def test_sampling_frequencies(fam, params, log_joint):
    n = 200_000
    z = fam.sample(params, n, np.random.default_rng(0))
    assert z.shape == (n, fam.dim) and np.issubdtype(z.dtype, np.integer)
    states, probs = brute_force_probs(fam, params)
    counts = np.array([np.sum(np.all(z == s, axis=1)) for s in states])
    assert counts.sum() == n
    # chi-square goodness of fit
    assert stats.chisquare(counts, probs * n).pvalue > 1e-3


@pytest.mark.parametrize("fam,params,log_joint", all_problems())
def test_score_is_the_gradient_of_log_prob_and_has_mean_zero(fam, params, log_joint):
    states = fam.support()
    for i, s in enumerate(states):
        auto = autograd.grad(lambda p: fam.log_prob(p, s[None, :])[0])(params)
        np.testing.assert_allclose(fam.score(params, s[None, :])[0], auto, rtol=1e-10, atol=1e-12)
    # eq-rf-score-mean-zero, exactly, by summing over the support
    np.testing.assert_allclose(fam.probs_of_support(params) @ fam.score(params, states),
                               np.zeros(fam.n_params), atol=1e-12)


@pytest.mark.parametrize("fam,params,log_joint", all_problems())
def test_entropy(fam, params, log_joint):
    _, probs = brute_force_probs(fam, params)
    assert fam.entropy(params) == pytest.approx(-np.sum(probs * np.log(probs)), rel=1e-12)


def test_pack_unpack_roundtrip_and_init():
    cat = D.Categorical(4)
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(cat.unpack(cat.pack(probs)), probs, rtol=1e-12)
    np.testing.assert_allclose(cat.unpack(cat.init_params()), 0.25)
    # logits are defined up to a constant
    np.testing.assert_allclose(cat.unpack(cat.pack(probs) + 7.0), probs, rtol=1e-12)
    bern = D.MeanFieldBernoulli(3)
    p = np.array([0.05, 0.5, 0.99])
    np.testing.assert_allclose(bern.unpack(bern.pack(p)), p, rtol=1e-12)
    np.testing.assert_allclose(bern.unpack(bern.init_params()), 0.5)
    np.testing.assert_allclose(bern.unpack(bern.pack(0.3)), 0.3)
    assert cat == D.Categorical(4) and cat != D.Categorical(5) and bern != cat
    assert "Categorical(4)" in repr(cat)


def test_support():
    assert D.Categorical(3).support().tolist() == [[0], [1], [2]]
    s = D.MeanFieldBernoulli(3).support()
    assert s.shape == (8, 3)
    assert {tuple(r) for r in s} == {(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)}
    with pytest.raises(ValueError, match="MAX_SUPPORT"):
        D.MeanFieldBernoulli(17).support()


def test_samples_are_step_functions_of_the_parameters():
    """Same seed, slightly different logits: almost all samples are identical (chapter claim)."""
    bern = D.MeanFieldBernoulli(1)
    ell = bern.pack(0.3)
    a = bern.sample(ell, 100_000, 0)
    b = bern.sample(ell + 1e-3, 100_000, 0)
    changed = np.sum(a != b)
    # expected number of flips: n * (p(ell + 1e-3) - p(ell)) ~ n * p (1 - p) * 1e-3 = 21
    assert 5 < changed < 45
    assert np.all(b >= a)          # a larger logit can only turn 0s into 1s
    cat = D.Categorical(4)
    params = cat.pack([0.1, 0.2, 0.3, 0.4])
    same = cat.sample(params, 10_000, 1) == cat.sample(params + [0, 1e-4, 0, 0], 10_000, 1)
    assert same.mean() > 0.999


def test_seeded_and_generator_rng_agree():
    fam, params, _, lj = categorical_problem()
    np.testing.assert_array_equal(fam.sample(params, 50, 3), fam.sample(params, 50, np.random.default_rng(3)))
    np.testing.assert_array_equal(D.score_function_grad(lj, fam, params, 20, 5),
                                  D.score_function_grad(lj, fam, params, 20, 5))


# --- exact enumeration ----------------------------------------------------------------------------


def test_enumerated_posterior_and_exact_elbo_against_loops():
    fam, params, table, lj = categorical_problem()
    post = D.enumerate_posterior(lj, fam)
    evidence = sum(np.exp(v) for v in table)
    assert post.log_evidence == pytest.approx(np.log(evidence), rel=1e-12)
    np.testing.assert_allclose(post.probs, np.exp(table) / evidence, rtol=1e-12)
    _, q = brute_force_probs(fam, params)
    elbo = sum(q[k] * (table[k] - np.log(q[k])) for k in range(5))
    assert D.exact_elbo(lj, fam, params) == pytest.approx(elbo, rel=1e-12)
    # log p(D) = ELBO + KL(q || posterior), KL from its definition
    kl = sum(q[k] * np.log(q[k] / post.probs[k]) for k in range(5))
    assert post.log_evidence == pytest.approx(elbo + kl, rel=1e-12)
    assert kl > 0
    # the bound is tight at the posterior, which the categorical family contains
    at_post = fam.pack(post.probs)
    assert D.exact_elbo(lj, fam, at_post) == pytest.approx(post.log_evidence, rel=1e-12)
    np.testing.assert_allclose(D.exact_elbo_grad(lj, fam, at_post), 0.0, atol=1e-10)


@pytest.mark.parametrize("fam,params,log_joint", all_problems())
def test_exact_elbo_grad_matches_autograd_and_finite_differences(fam, params, log_joint):
    exact = D.exact_elbo_grad(log_joint, fam, params)
    auto = autograd.grad(lambda p: D.exact_elbo(log_joint, fam, p))(params)
    np.testing.assert_allclose(exact, auto, rtol=1e-10, atol=1e-12)
    h = 1e-6
    fd = np.array([(D.exact_elbo(log_joint, fam, params + h * e) - D.exact_elbo(log_joint, fam, params - h * e))
                   / (2 * h) for e in np.eye(fam.n_params)])
    np.testing.assert_allclose(exact, fd, rtol=1e-6, atol=1e-8)


def test_categorical_exact_gradient_closed_form():
    """For logits, d ELBO / d ell_j = q_j (f_j - ELBO) with f = log p - log q."""
    fam, params, table, lj = categorical_problem()
    _, q = brute_force_probs(fam, params)
    f = table - np.log(q)
    np.testing.assert_allclose(D.exact_elbo_grad(lj, fam, params), q * (f - np.sum(q * f)), rtol=1e-10)
    assert D.exact_elbo_grad(lj, fam, params).sum() == pytest.approx(0.0, abs=1e-12)


# --- REINFORCE ------------------------------------------------------------------------------------


def assert_unbiased(rows, exact, n_se=5.0):
    mean = rows.mean(axis=0)
    se = rows.std(axis=0, ddof=1) / np.sqrt(rows.shape[0])
    assert np.all(np.abs(mean - exact) <= n_se * se + 1e-12), (mean, exact, se)


@pytest.mark.parametrize("fam,params,log_joint", all_problems())
@pytest.mark.parametrize("baseline", [None, -18.0])
def test_score_function_gradient_is_unbiased(fam, params, log_joint, baseline):
    rows = D.score_function_grad_samples(log_joint, fam, params, 200_000, 11, baseline=baseline)
    assert rows.shape == (200_000, fam.n_params)
    assert_unbiased(rows, D.exact_elbo_grad(log_joint, fam, params))
    np.testing.assert_allclose(D.score_function_grad(log_joint, fam, params, 30, 2, baseline=baseline),
                               D.score_function_grad_samples(log_joint, fam, params, 30, 2,
                                                             baseline=baseline).mean(axis=0))


@pytest.mark.parametrize("fam,params,log_joint", all_problems())
def test_leave_one_out_baseline_is_unbiased_and_reduces_variance(fam, params, log_joint):
    exact = D.exact_elbo_grad(log_joint, fam, params)
    rng = np.random.default_rng(12)
    n, repeats = 4, 5_000
    loo = np.array([D.score_function_grad(log_joint, fam, params, n, rng, baseline="mean")
                    for _ in range(repeats)])
    # without a baseline the terms are independent, so estimates with n samples are group means
    plain = D.score_function_grad_samples(log_joint, fam, params, n * repeats, rng)
    plain = plain.reshape(repeats, n, fam.n_params).mean(axis=1)
    assert_unbiased(loo, exact)
    assert_unbiased(plain, exact)
    # the learning signal carries an offset (about -20 and -10 here), which the baseline removes
    assert np.all(loo.var(axis=0) < 0.2 * plain.var(axis=0))


def test_including_the_own_sample_in_the_baseline_would_bias():
    """Why leave-one-out: the plain mean of all n signals, sample i included, biases the estimate."""
    fam, params, _, lj = categorical_problem()
    exact = D.exact_elbo_grad(lj, fam, params)
    n, repeats = 3, 100_000
    z = fam.sample(params, n * repeats, np.random.default_rng(13))
    f = (lj(z) - fam.log_prob(params, z)).reshape(repeats, n)
    score = fam.score(params, z).reshape(repeats, n, fam.n_params)
    est = ((f - f.mean(axis=1, keepdims=True))[:, :, None] * score).mean(axis=1)
    se = est.std(axis=0, ddof=1) / np.sqrt(repeats)
    # the expectation is (1 - 1/n) times the gradient: clearly visible
    np.testing.assert_allclose(est.mean(axis=0), (1 - 1 / n) * exact, atol=5 * se.max())
    assert np.max(np.abs(est.mean(axis=0) - exact) / se) > 10


def test_reinforce_needs_no_gradient_of_the_model():
    """The log joint is only evaluated: a lookup table that autograd could not differentiate."""
    cat = D.Categorical(6)
    table = np.log(np.array([1, 2, 3, 4, 5, 6]) / 21.0)

    def opaque(z):
        return np.array([table[int(k)] for k in np.asarray(z)[:, 0]])

    params = cat.init_params()
    rows = D.score_function_grad_samples(opaque, cat, params, 100_000, 3, baseline="mean")
    assert_unbiased(rows, D.exact_elbo_grad(opaque, cat, params))


def test_accepts_a_model_object():
    x = np.r_[np.zeros(5), np.ones(5)]
    model = D.ChangePoint(x)
    cat = D.Categorical(model.n_states)
    params = cat.init_params()
    np.testing.assert_allclose(D.score_function_grad(model, cat, params, 10, 0),
                               D.score_function_grad(model.log_joint, cat, params, 10, 0))
    assert D.exact_elbo(model, cat, params) == pytest.approx(D.exact_elbo(model.log_joint, cat, params))


# --- the change-point model -----------------------------------------------------------------------


def test_change_point_against_brute_force():
    rng = np.random.default_rng(4)
    x = np.r_[rng.normal(-0.5, 0.7, 6), rng.normal(1.0, 0.7, 5)]
    model = D.ChangePoint(x, mean_before=-0.5, mean_after=1.0, noise_var=0.49)
    assert model.n_states == x.size - 1 and model.dim == 1
    log_joint = []
    for k in range(x.size - 1):
        lp = -np.log(x.size - 1)
        for t, xt in enumerate(x):
            lp += stats.norm(-0.5 if t <= k else 1.0, 0.7).logpdf(xt)
        log_joint.append(lp)
    log_joint = np.array(log_joint)
    np.testing.assert_allclose(model.log_joint(np.arange(x.size - 1)[:, None]), log_joint, rtol=1e-12)
    assert model.log_evidence() == pytest.approx(logsumexp(log_joint), rel=1e-12)
    np.testing.assert_allclose(model.posterior(), np.exp(log_joint - logsumexp(log_joint)), rtol=1e-10)
    post = D.enumerate_posterior(model, D.Categorical(model.n_states))
    np.testing.assert_allclose(post.probs, model.posterior(), rtol=1e-12)
    # float states holding integers are accepted
    np.testing.assert_allclose(model.log_joint([[0.0], [3.0]]), log_joint[[0, 3]])


def test_reinforce_fit_recovers_the_change_point_posterior():
    rng = np.random.default_rng(5)
    x = np.r_[rng.normal(0.0, 1.0, 8), rng.normal(2.0, 1.0, 7)]
    model = D.ChangePoint(x, 0.0, 2.0, 1.0)
    cat = D.Categorical(model.n_states)
    from vi_course.optim import Adam, apply, robbins_monro
    opt = Adam(robbins_monro(0.1, 0.01), maximize=True)
    params = cat.init_params()
    state = opt.init(params)
    for _ in range(800):
        delta, state = opt.update(D.score_function_grad(model, cat, params, 10, rng, baseline="mean"), state)
        params = apply(params, delta)
    kl = model.log_evidence() - D.exact_elbo(model, cat, params)
    assert 0 <= kl < 0.02
    np.testing.assert_allclose(cat.unpack(params), model.posterior(), atol=0.03)


# --- bad input ------------------------------------------------------------------------------------


def test_bad_input_families():
    with pytest.raises(ValueError, match="n_categories"):
        D.Categorical(1)
    with pytest.raises(ValueError, match="dim"):
        D.MeanFieldBernoulli(0)
    cat, bern = D.Categorical(3), D.MeanFieldBernoulli(2)
    with pytest.raises(ValueError, match="params"):
        cat.log_prob(np.zeros(4), [[0]])
    with pytest.raises(ValueError, match="params"):
        bern.sample([0.0, np.nan], 5, 0)
    with pytest.raises(ValueError, match="probs"):
        cat.pack([0.5, 0.6, -0.1])
    with pytest.raises(ValueError, match="sum to 1"):
        cat.pack([0.2, 0.2, 0.2])
    with pytest.raises(ValueError, match="open interval"):
        bern.pack([0.0, 0.5])
    with pytest.raises(ValueError, match="0..2"):
        cat.log_prob(cat.init_params(), [[3]])
    with pytest.raises(ValueError, match="0..2"):
        cat.score(cat.init_params(), np.array([[-1]]))
    with pytest.raises(ValueError, match="integers"):
        cat.log_prob(cat.init_params(), [[0.5]])
    with pytest.raises(ValueError, match="shape"):
        bern.log_prob(bern.init_params(), np.array([[0, 1, 1]]))
    with pytest.raises(ValueError, match="0..1"):
        bern.score(bern.init_params(), [[0, 2]])
    with pytest.raises(ValueError, match="n must"):
        cat.sample(cat.init_params(), 0, 0)
    with pytest.raises(ValueError, match="rng"):
        cat.sample(cat.init_params(), 3, "seed")


def test_bad_input_functions_and_model():
    fam, params, _, lj = categorical_problem()
    with pytest.raises(ValueError, match="family"):
        D.score_function_grad(lj, MeanFieldGaussian(1), np.zeros(2), 10, 0)
    with pytest.raises(ValueError, match="baseline"):
        D.score_function_grad(lj, fam, params, 10, 0, baseline="median")
    with pytest.raises(ValueError, match="n >= 2"):
        D.score_function_grad(lj, fam, params, 1, 0, baseline="mean")
    with pytest.raises(ValueError, match="log_joint"):
        D.exact_elbo(lambda z: np.full(z.shape[0], np.nan), fam, params)
    with pytest.raises(ValueError, match="log_joint"):
        D.enumerate_posterior(lambda z: np.zeros(3), fam)
    with pytest.raises(ValueError, match="log_joint"):
        D.exact_elbo("not a model", fam, params)
    with pytest.raises(ValueError, match="at least 2"):
        D.ChangePoint([1.0])
    with pytest.raises(ValueError, match="x"):
        D.ChangePoint([0.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="noise_var"):
        D.ChangePoint([0.0, 1.0], noise_var=0.0)
    with pytest.raises(ValueError, match="mean_after"):
        D.ChangePoint([0.0, 1.0], mean_after=np.inf)
    model = D.ChangePoint([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="0..1"):
        model.log_joint([[2]])


# --------------------------------------------------------------------------------------------------
# bad input, table-driven (tests/bad_inputs.py)

from bad_inputs import baselines, cases, check_accepts, check_rejects, spec  # noqa: E402


def _family_specs(fam):
    nm, p0 = type(fam).__name__, fam.init_params()
    z0 = fam.sample(p0, 3, 0)
    bad_z = ("values", [np.full((2, fam.dim), 7), np.full((2, fam.dim), -1), np.full((2, fam.dim), 0.5),
                        np.zeros((2, fam.dim + 1), int), np.zeros((0, fam.dim), int), np.full((2, fam.dim), np.nan),
                        np.full((2, fam.dim), "a"), None, object()])
    return [
        spec(f"{nm}.sample", fam.sample, dict(params=p0, n=3, rng=0),
             dict(params=("params", fam.n_params), n="int", rng="rng")),
        spec(f"{nm}.log_prob", fam.log_prob, dict(params=p0, z=z0), dict(params=("params", fam.n_params), z=bad_z)),
        spec(f"{nm}.score", fam.score, dict(params=p0, z=z0), dict(params=("params", fam.n_params), z=bad_z)),
        spec(f"{nm}.entropy", fam.entropy, dict(params=p0), dict(params=("params", fam.n_params))),
        spec(f"{nm}.unpack", fam.unpack, dict(params=p0), dict(params=("params", fam.n_params))),
        spec(f"{nm}.probs_of_support", fam.probs_of_support, dict(params=p0), dict(params=("params", fam.n_params))),
    ]


_CP = D.ChangePoint([0.0, 0.1, 1.0, 1.2])
_CAT3 = D.Categorical(3)
_DCOMMON = dict(log_joint=_CP.log_joint, family=_CAT3, params=_CAT3.init_params(), n=10, rng=0)
_DKINDS = dict(log_joint="callable", family="family", params=("params", 3), n="int", rng="rng")

BAD_INPUT = [
    spec("Categorical", D.Categorical, dict(n_categories=3), dict(n_categories=("values", [1, 0, 2.5, "3", None,
                                                                                           True]))),
    spec("MeanFieldBernoulli", D.MeanFieldBernoulli, dict(dim=2), dict(dim="int")),
    *_family_specs(D.Categorical(3)), *_family_specs(D.MeanFieldBernoulli(2)),
    spec("Categorical.pack", D.Categorical(3).pack, dict(probs=[0.2, 0.3, 0.5]),
         dict(probs=("values", [[0.2, 0.3, 0.6], [0.0, 0.5, 0.5], [0.5, 0.5], [np.nan] * 3, ["a"] * 3, None]))),
    spec("MeanFieldBernoulli.pack", D.MeanFieldBernoulli(2).pack, dict(probs=[0.2, 0.3]),
         dict(probs=("values", [[0.0, 0.5], [1.0, 0.5], [0.2, 0.3, 0.4], [np.nan, 0.5], ["a", "b"], None]))),
    spec("ChangePoint", D.ChangePoint, dict(x=[0.0, 0.1, 1.0], mean_before=0.0, mean_after=1.0, noise_var=1.0),
         dict(x="data", mean_before="real", mean_after="real", noise_var="pos")),
    spec("ChangePoint.log_joint", _CP.log_joint, dict(z=np.zeros((2, 1), int)),
         dict(z=("values", [np.full((2, 1), 3), np.full((2, 1), 0.5), np.zeros((0, 1)), np.zeros((2, 2)), None]))),
    spec("score_function_grad", D.score_function_grad, _DCOMMON, _DKINDS),
    spec("score_function_grad_samples", D.score_function_grad_samples, _DCOMMON, _DKINDS),
    spec("exact_elbo", D.exact_elbo, dict(log_joint=_CP.log_joint, family=_CAT3, params=_CAT3.init_params()),
         dict(log_joint="callable", family="family", params=("params", 3))),
    spec("exact_elbo_grad", D.exact_elbo_grad, dict(log_joint=_CP.log_joint, family=_CAT3, params=_CAT3.init_params()),
         dict(log_joint="callable", family="family", params=("params", 3))),
    spec("enumerate_posterior", D.enumerate_posterior, dict(log_joint=_CP.log_joint, family=_CAT3),
         dict(log_joint="callable", family="family")),
]


@pytest.mark.parametrize("fn, kwargs", baselines(BAD_INPUT))
def test_bad_input_table_baselines_work(fn, kwargs):
    check_accepts(fn, kwargs)


@pytest.mark.parametrize("fn, kwargs, name", cases(BAD_INPUT))
def test_bad_input_table(fn, kwargs, name):
    check_rejects(fn, kwargs, name)
