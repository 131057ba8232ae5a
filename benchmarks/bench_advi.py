r"""Benchmark: our ADVI against NumPyro SVI on the InverseGamma-Normal model (chapter "ADVI with constraining transforms").

Model: :math:`s \sim \mathrm{InvGamma}(2, 3)`, :math:`m \mid s \sim N(0, s)`, :math:`x_i \sim N(m, s)`,
n = 100 synthetic observations (seeded once; the seed was fixed before any run and is not tuned).
The exact posterior means and standard deviations come from Normal-Inverse-Gamma conjugacy
(:meth:`vi_course.models.InverseGammaNormal.posterior`).

Compared, in one run:

* ``vc.advi(model, family="meanfield")`` and ``family="fullrank"`` with their defaults;
* NumPyro SVI with ``AutoNormal`` (mean-field) and ``AutoMultivariateNormal`` (full-rank) guides,
  ``numpyro.optim.Adam(0.01)``, ``Trace_ELBO()``, 10,000 steps, in float64 (``enable_x64``) so that
  both libraries work at the same precision. The 10,000 steps run inside one jitted
  ``lax.fori_loop``; the wall time is measured on a second call, after a compile and warm-up call.

Both libraries fit the same families in the same unconstrained space (log s, m), so at convergence
they have the same approximation bias; the errors below are against the *exact* posterior. Moments of
each fitted q are estimated from 1,000,000 draws in the constrained space (sampling is not timed); the
Monte Carlo resolution of that estimate is printed and used as the tolerance of "equal error".

Target: our error equal to or smaller than NumPyro's (within that resolution) at less than half of
NumPyro's wall time, for each family.

Run with ``python -m benchmarks advi``.
"""
from __future__ import annotations

import os
import resource
import sys
import time
import tracemalloc

import numpy as np

import vi_course as vc
from vi_course.models import InverseGammaNormal

DATA_SEED = 20240521      # fixed once for the benchmark data; never tuned
N_DATA = 100
TRUE_S, TRUE_M = 4.0, 1.5
PRIOR_A, PRIOR_B = 2.0, 3.0
N_EVAL = 1_000_000        # draws from each fitted q to estimate its moments
NUMPYRO_STEPS = 10_000
NUMPYRO_LR = 0.01


def _data():
    rng = np.random.default_rng(DATA_SEED)
    return rng.normal(TRUE_M, np.sqrt(TRUE_S), size=N_DATA)


def _moments(samples):
    samples = np.asarray(samples, dtype=float)
    return {"mean_s": samples[:, 0].mean(), "mean_m": samples[:, 1].mean(),
            "sd_s": samples[:, 0].std(), "sd_m": samples[:, 1].std()}


def _errors(moments, exact):
    return {
        "mean_s_pct": 100.0 * abs(moments["mean_s"] - exact["mean_s"]) / exact["mean_s"],
        "mean_m_abs": abs(moments["mean_m"] - exact["mean_m"]),
        "sd_s_pct": 100.0 * abs(moments["sd_s"] - exact["sd_s"]) / exact["sd_s"],
        "sd_m_pct": 100.0 * abs(moments["sd_m"] - exact["sd_m"]) / exact["sd_m"],
    }


def _mc_resolution(exact, n):
    """Two Monte Carlo standard errors of each moment estimate (in the units of `_errors`)."""
    se_mean_s = exact["sd_s"] / np.sqrt(n)
    se_mean_m = exact["sd_m"] / np.sqrt(n)
    # sd estimate: se ~ sd * sqrt((kurtosis - 1) / (4 n)); an inverse gamma with a_n = 52 has excess
    # kurtosis ~ 0.13, so a factor sqrt(2.2 / (4 n)) is generous for s and sqrt(2 / (4 n)) fits m
    return {
        "mean_s_pct": 2 * 100.0 * se_mean_s / exact["mean_s"],
        "mean_m_abs": 2 * se_mean_m,
        "sd_s_pct": 2 * 100.0 * np.sqrt(2.2 / (4 * n)),
        "sd_m_pct": 2 * 100.0 * np.sqrt(2.0 / (4 * n)),
    }


def _fmt(value, width):
    return f"{'-':>{width}}" if not np.isfinite(value) else f"{value:>{width}.3f}"


def _peak_rss_mb():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 1024.0 ** 2


def _run_ours(model, family):
    t0, c0 = time.perf_counter(), time.process_time()
    fit = vc.advi(model, family=family)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # memory in a separate, untimed run: tracemalloc slows allocation-heavy Python code a lot
    tracemalloc.start()
    vc.advi(model, family=family)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    samples = fit.sample(N_EVAL, np.random.default_rng(1))
    return {"method": f"vi_course advi ({family})", "family": family, "wall": wall, "cpu": cpu,
            "steps": int(getattr(fit, "n_steps", len(fit.elbo_trace))),
            "peak_mb": peak / 1024.0 ** 2, "moments": _moments(samples)}


def _family_optimum(model, family, n_nodes=60):
    r"""Reference: the ELBO-optimal Gaussian of the family in (log s, m), found deterministically.

    The ELBO :math:`E_{z \sim N(0, I)}[\log\tilde p(\mu + L z)] + \log|\det L| + \text{const}` is
    evaluated with a 60 x 60 Gauss-Hermite rule and maximised with BFGS (autograd gradient); the
    moments of the implied q(s, m) are then exact (s = exp(eta_1) is log-normal). These are the
    errors of the family's ELBO-best member, i.e. the family's own bias: a method that has converged
    shows errors close to these (a little above or below them, by optimisation and Monte Carlo noise).
    """
    import autograd.numpy as anp
    from autograd import value_and_grad
    from numpy.polynomial.hermite_e import hermegauss
    from scipy import optimize

    from vi_course import transforms

    log_p = transforms.transformed_log_density(model.log_joint, transforms.from_supports(model.supports))
    nodes, weights = hermegauss(n_nodes)
    weights = weights / weights.sum()
    z = np.array(np.meshgrid(nodes, nodes, indexing="ij")).reshape(2, -1).T
    w = np.outer(weights, weights).ravel()

    def unpack(p):
        mu = p[:2]
        if family == "meanfield":
            chol = anp.diag(anp.exp(p[2:4]))
        else:
            chol = anp.array([[anp.exp(p[2]), 0.0], [p[4], anp.exp(p[3])]])
        return mu, chol

    def negative_elbo(p):
        mu, chol = unpack(p)
        eta = mu + anp.dot(z, chol.T)
        return -(anp.sum(w * log_p(eta)) + p[2] + p[3])

    start = np.zeros(4 if family == "meanfield" else 5)
    start[:2] = [np.log(np.var(model.x)), np.mean(model.x)]
    start[2:4] = -2.0
    res = optimize.minimize(value_and_grad(negative_elbo), start, jac=True, method="BFGS",
                            options={"gtol": 1e-10, "maxiter": 2000})
    mu, chol = unpack(res.x)
    cov = np.asarray(chol) @ np.asarray(chol).T
    v = cov[0, 0]
    moments = {"mean_s": np.exp(mu[0] + v / 2), "sd_s": np.sqrt((np.exp(v) - 1) * np.exp(2 * mu[0] + v)),
               "mean_m": mu[1], "sd_m": np.sqrt(cov[1, 1])}
    return {"method": f"family optimum ({family}, quadrature)", "family": family, "wall": float("nan"),
            "cpu": float("nan"), "steps": int(res.nit), "peak_mb": float("nan"), "moments": moments}


def _run_numpyro(x):
    """NumPyro SVI runs; returns a list of result dicts, or a string explaining why they are missing."""
    try:
        import jax
        import numpyro
        import numpyro.distributions as dist
        from numpyro.infer import SVI, Trace_ELBO
        from numpyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
    except ImportError as exc:  # the optional extra `bench-numpyro` is not installed
        return (f"NumPyro/JAX not available ({exc}); install the optional extra "
                "`pip install -e .[bench-numpyro]` to compare. Only our results are shown.")

    numpyro.enable_x64()
    import jax.numpy as jnp

    def model(x_obs):
        s = numpyro.sample("s", dist.InverseGamma(PRIOR_A, PRIOR_B))  # concentration, rate (= IG scale)
        m = numpyro.sample("m", dist.Normal(0.0, jnp.sqrt(s)))
        numpyro.sample("x", dist.Normal(m, jnp.sqrt(s)), obs=x_obs)

    x_j = jnp.asarray(x)
    out = []
    for family, guide_cls in [("meanfield", AutoNormal), ("fullrank", AutoMultivariateNormal)]:
        guide = guide_cls(model)
        svi = SVI(model, guide, numpyro.optim.Adam(NUMPYRO_LR), Trace_ELBO())
        state0 = svi.init(jax.random.PRNGKey(0), x_j)

        @jax.jit
        def run(state):
            def body(_, carry):
                new_state, _loss = svi.update(carry, x_j)
                return new_state
            return jax.lax.fori_loop(0, NUMPYRO_STEPS, body, state)

        t0 = time.perf_counter()
        jax.block_until_ready(run(state0))                 # compile + warm-up run
        compile_and_first = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        state = jax.block_until_ready(run(state0))         # timed run
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        params = svi.get_params(state)
        draws = guide.sample_posterior(jax.random.PRNGKey(1), params, sample_shape=(N_EVAL,))
        samples = np.column_stack([np.asarray(draws["s"]), np.asarray(draws["m"])])
        out.append({"method": f"NumPyro SVI ({guide_cls.__name__})", "family": family, "wall": wall, "cpu": cpu,
                    "steps": NUMPYRO_STEPS, "compile": compile_and_first - wall,
                    "peak_mb": float("nan"), "moments": _moments(samples)})
    return out


def main():
    """Run the benchmark and print the table (chapter: ADVI with constraining transforms).

    Returns the list of result rows (dicts with ``method``, ``wall``, ``cpu``, ``moments``, ``errors``).
    """
    x = _data()
    model = InverseGammaNormal(x, a=PRIOR_A, b=PRIOR_B)
    exact = model.posterior()
    print(f"InverseGamma({PRIOR_A:g}, {PRIOR_B:g})-Normal, n = {N_DATA} (data seed {DATA_SEED}); exact posterior:"
          f" E[s] = {exact['mean_s']:.4f}, sd[s] = {exact['sd_s']:.4f},"
          f" E[m] = {exact['mean_m']:.4f}, sd[m] = {exact['sd_m']:.4f}")

    vc.advi(InverseGammaNormal(x[:5]), family="meanfield", n_steps=50)  # import/first-call warm-up
    ours = [_run_ours(model, family) for family in ("meanfield", "fullrank")]
    rss_ours = _peak_rss_mb()
    theirs = _run_numpyro(x)
    rss_all = _peak_rss_mb()

    optima = [_family_optimum(model, family) for family in ("meanfield", "fullrank")]
    rows = ours + (theirs if isinstance(theirs, list) else []) + optima
    tol = _mc_resolution(exact, N_EVAL)
    header = (f"{'method':<38}{'steps':>7}{'wall (s)':>10}{'cpu (s)':>9}{'|E[s] err| %':>14}{'|E[m] err|':>12}"
              f"{'sd[s] err %':>13}{'sd[m] err %':>13}")
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        e = _errors(r["moments"], exact)
        r["errors"] = e
        print(f"{r['method']:<38}{r['steps']:>7}{_fmt(r['wall'], 10)}{_fmt(r['cpu'], 9)}{e['mean_s_pct']:>14.3f}"
              f"{e['mean_m_abs']:>12.5f}{e['sd_s_pct']:>13.3f}{e['sd_m_pct']:>13.3f}")
    print(f"{'Monte Carlo resolution (2 s.e.)':<38}{'':>7}{'':>10}{'':>9}{tol['mean_s_pct']:>14.3f}"
          f"{tol['mean_m_abs']:>12.5f}{tol['sd_s_pct']:>13.3f}{tol['sd_m_pct']:>13.3f}")

    print()
    print(f"Machine load while running: {os.getloadavg()[0]:.1f} (1-min load average) on {os.cpu_count()} CPUs; "
          "wall times are inflated when the machine is shared, CPU times less so.")
    print("Memory: peak traced Python/numpy allocation during each of our fits (tracemalloc): "
          + ", ".join(f"{r['family']} {r['peak_mb']:.1f} MB" for r in ours)
          + f"; process peak RSS after our runs {rss_ours:.0f} MB, after NumPyro/JAX {rss_all:.0f} MB"
          " (RSS includes the interpreter, libraries and the 1e6-draw evaluation arrays).")

    if not isinstance(theirs, list):
        print()
        print(theirs)
        return rows
    for r in theirs:
        print(f"{r['method']}: compile + warm-up took {r['compile']:.2f} s more than the timed run (not counted).")

    print()
    print("Target: equal or smaller error (within the Monte Carlo resolution) at less than half NumPyro's wall time")
    for mine, ref in zip(ours, theirs):
        worse = [k for k in tol if mine["errors"][k] > ref["errors"][k] + tol[k]]
        faster = mine["wall"] < 0.5 * ref["wall"]
        verdict = "MET" if (not worse and faster) else "MISSED"
        detail = []
        detail.append(f"wall-time ratio ours/NumPyro = {mine['wall'] / ref['wall']:.2f} (needs < 0.5; "
                      f"CPU-time ratio {mine['cpu'] / ref['cpu']:.2f})")
        detail.append("errors ok" if not worse else f"larger error in {', '.join(worse)}")
        print(f"  {mine['family']:<10} {verdict}: " + "; ".join(detail))
    return rows


if __name__ == "__main__":
    main()
