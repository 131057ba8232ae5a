"""CAVI for the Bayesian Gaussian mixture: ``vi_course.cavi_gmm`` against scikit-learn.

Run with ``python -m benchmarks cavi`` (or ``make bench``). For n = 10^4, 10^5, 10^6 points from three
well-separated unit-variance clusters (means -6, 0, 6, equal weights, seeded), both methods fit K = 3
components; each fit runs in its own subprocess so that its peak memory is measured alone:

* time to convergence (best of a few repeats), iterations, iterations per second;
* peak resident memory above the level before the fit (Linux: the peak-RSS counter ``VmHWM`` is
  reset through ``/proc/self/clear_refs`` after the data are built; elsewhere ``ru_maxrss`` minus the
  RSS before the fit, which can under-report);
* the sorted cluster means of both side by side.

At n = 10^6 it checks that ``cavi_gmm`` is at least 5x faster than scikit-learn *in the same run*
and that both give the same cluster means to 3 decimals (|difference| < 5e-4). Then it times
n = 10^7 for ``cavi_gmm`` alone, to show the O(nK) memory.

The comparison is not like for like, and the output says so: scikit-learn's
``BayesianGaussianMixture`` also learns a variance per component and the mixing weights (a
Dirichlet prior on the weights, a Gamma prior on the precisions), while our model fixes the
variances at 1 and the weights at 1/K. It is configured to be as close as it allows:
``covariance_type="spherical"`` (one variance per component; in one dimension the same as "full"),
``weight_concentration_prior_type="dirichlet_distribution"`` (a finite mixture, not its default
Dirichlet process), ``mean_prior=[0]`` and ``mean_precision_prior=1/prior_var`` (our N(0, prior_var)
prior on the means, which scikit-learn scales by the component precision, ~1 here), ``n_init=1``,
its default k-means initialisation, the same ``max_iter``, and ``tol = 1e-10 * n``: scikit-learn
stops when its lower bound (a sum over the data, of the order of n) changes by less than ``tol``;
``cavi_gmm`` stops when its ELBO increases by less than ``1e-10 * |ELBO|`` (about ``2.5e-10 * n``
here). Both use whatever threads numpy/BLAS/OpenMP give them by default.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

TRUE_MEANS = (-6.0, 0.0, 6.0)
PRIOR_VAR = 100.0
N_COMPONENTS = 3
MAX_ITER = 1000
TOL = 1e-10
DATA_SEED = 2024
SIZES = (10**4, 10**5, 10**6)
BIG = 10**7
CHECK_N = 10**6
MIN_SPEEDUP = 5.0
MEAN_TOL = 5e-4


# --------------------------------------------------------------------------------------------------
# worker side (one subprocess per method and size)


def _data(n):
    import numpy as np

    rng = np.random.default_rng(DATA_SEED)
    means = np.asarray(TRUE_MEANS)
    return rng.normal(means[rng.integers(0, means.size, n)], 1.0)


def _status_kb(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak():
    """Reset the peak-RSS counter; return the way the peak will be measured."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return "VmHWM"
    except OSError:
        return "ru_maxrss"


def _peak_increase_mb(method, before_kb):
    if method == "VmHWM":
        peak_kb = _status_kb("VmHWM")
    else:
        import resource

        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(0, peak_kb - before_kb) / 1024.0


def _rss_kb():
    try:
        return _status_kb("VmRSS")
    except (OSError, KeyError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _fit_ours(x):
    from vi_course import cavi_gmm

    res = cavi_gmm(x, N_COMPONENTS, PRIOR_VAR, max_iter=MAX_ITER, tol=TOL, seed=0)
    return dict(n_iter=res.n_iter, converged=bool(res.converged), means=sorted(res.means.tolist()),
                elbo=res.elbo)


def _fit_sklearn(x):
    import numpy as np
    from sklearn.mixture import BayesianGaussianMixture

    model = BayesianGaussianMixture(
        n_components=N_COMPONENTS, covariance_type="spherical",
        weight_concentration_prior_type="dirichlet_distribution",
        mean_prior=[0.0], mean_precision_prior=1.0 / PRIOR_VAR,
        max_iter=MAX_ITER, tol=TOL * x.size, n_init=1, random_state=0,
    ).fit(x[:, None])
    order = np.argsort(model.means_[:, 0])
    return dict(n_iter=int(model.n_iter_), converged=bool(model.converged_),
                means=model.means_[order, 0].tolist(), variances=model.covariances_[order].tolist(),
                weights=model.weights_[order].tolist(), bound=float(model.lower_bound_))


def _worker(method, n, repeats):
    import numpy as np

    fit = {"ours": _fit_ours, "sklearn": _fit_sklearn}[method]
    if method == "sklearn":
        import sklearn.mixture  # noqa: F401  (import cost is not part of the fit)
    else:
        import vi_course  # noqa: F401
    x = _data(n)
    times, peaks, out = [], [], None
    for _ in range(repeats):
        how = _reset_peak()
        before = _rss_kb()
        start = time.perf_counter()
        out = fit(x)
        times.append(time.perf_counter() - start)
        peaks.append(_peak_increase_mb(how, before))
    out.update(time=min(times), peak_mb=max(peaks), peak_method=how, n=n, method=method,
               data_mb=x.nbytes / 2**20)
    np.asarray(0)  # keep numpy imported for the JSON below
    print(json.dumps(out))


# --------------------------------------------------------------------------------------------------
# driver


def _run(method, n, repeats):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, "-m", "benchmarks.bench_cavi", "--worker", method, str(n), str(repeats)]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{method} worker for n={n} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _row(r):
    rate = r["n_iter"] / r["time"] if r["time"] > 0 else float("inf")
    means = "  ".join(f"{m:+.4f}" for m in r["means"])
    conv = "" if r["converged"] else " (not converged)"
    return (f"{r['n']:>10,d}  {r['method']:<8s} {r['time']:9.3f} {r['n_iter']:6d} {rate:9.1f} "
            f"{r['peak_mb']:12.1f}   {means}{conv}")


def main():
    """Run the benchmark, print the table and the n = 10^6 check; raise SystemExit if it fails."""
    header = (f"{'n':>10s}  {'method':<8s} {'time[s]':>9s} {'iters':>6s} {'iters/s':>9s} "
              f"{'peak RSS+MB':>12s}   sorted cluster means")
    print("Bayesian mixture of K=3 unit-variance Gaussians, true means "
          f"{TRUE_MEANS}, prior_var={PRIOR_VAR}, data seed {DATA_SEED}")
    print("ours = vi_course.cavi_gmm (CAVI, unit variances and equal weights fixed by the model)")
    print("sklearn = BayesianGaussianMixture(spherical, dirichlet_distribution): it ALSO learns a "
          "variance per component and the mixing weights, so it does more work per iteration")
    print(f"convergence: ours ELBO increase <= {TOL:g}*|ELBO|; sklearn bound change < {TOL:g}*n; "
          f"max_iter={MAX_ITER} for both; each fit in its own subprocess, time = best of the repeats\n")
    print(header)
    results = {}
    for n in SIZES:
        repeats = 3 if n < CHECK_N else 2
        for method in ("ours", "sklearn"):
            r = _run(method, n, repeats)
            results[(method, n)] = r
            print(_row(r), flush=True)
    skl = results[("sklearn", CHECK_N)]
    print(f"\nsklearn's learned variances at n={CHECK_N:,}: "
          + ", ".join(f"{v:.4f}" for v in skl["variances"])
          + "; weights: " + ", ".join(f"{w:.4f}" for w in skl["weights"]))
    big = _run("ours", BIG, 1)
    print(_row(big))
    out_mb = BIG * N_COMPONENTS * 8 / 2**20
    print(f"n={BIG:,}: the returned (n, K) responsibilities alone take {out_mb:.0f} MB and the data "
          f"{big['data_mb']:.0f} MB; the fit's peak RSS increase is {big['peak_mb']:.0f} MB "
          f"(O(nK): no other (n, K) array is allocated)")

    ours = results[("ours", CHECK_N)]
    speedup = skl["time"] / ours["time"]
    diff = max(abs(a - b) for a, b in zip(ours["means"], skl["means"]))
    same_3dp = [round(a, 3) for a in ours["means"]] == [round(b, 3) for b in skl["means"]]
    ok_speed = speedup >= MIN_SPEEDUP
    ok_means = diff < MEAN_TOL
    print(f"\ncheck at n={CHECK_N:,}:")
    print(f"  speed: ours {ours['time']:.3f} s vs sklearn {skl['time']:.3f} s -> {speedup:.1f}x "
          f"(required >= {MIN_SPEEDUP:g}x): {'PASS' if ok_speed else 'FAIL'}")
    per_ours = ours["time"] / ours["n_iter"] * 1e3
    per_skl = skl["time"] / skl["n_iter"] * 1e3
    print(f"  time / iterations (initialisation and final responsibilities included): "
          f"ours {per_ours:.1f} ms, sklearn {per_skl:.1f} ms")
    print(f"  means: max |ours - sklearn| = {diff:.2e} (required < {MEAN_TOL:g}, i.e. equal to 3 "
          f"decimals; rounded to 3 decimals they are {'identical' if same_3dp else 'not identical'}): "
          f"{'PASS' if ok_means else 'FAIL'}")
    if not (ok_speed and ok_means):
        raise SystemExit("cavi benchmark check failed")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
