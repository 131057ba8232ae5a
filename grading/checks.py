"""Numbers, arrays and functions: tolerant comparison and seeded statistical checks.

Every function here receives plain data already rebuilt by the judge (floats, lists) and the
trusted part of the ``CHECK`` declaration, and returns a :class:`~grading.compare.Verdict`.
Expected values may be numbers or constant formulas (``"log(exp(-9/16)/(2*sqrt(pi)))"``).
"""
from __future__ import annotations

import math

import numpy as np

from .compare import Verdict
from .exprtree import parse_formula


def expected_value(value):
    """A number, a list of numbers, or a constant formula string -> float / float array."""
    if isinstance(value, str):
        return float(parse_formula(value, {}).evalf(30))
    if isinstance(value, (list, tuple)):
        return np.array([expected_value(v) for v in value], dtype=float)
    return float(value)


def _close(got, want, atol, rtol) -> bool:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return False
    return bool(np.all(np.isfinite(got)) and np.all(np.abs(got - want) <= atol + rtol * np.abs(want)))


def _fmt(v) -> str:
    arr = np.asarray(v, dtype=float)
    if arr.ndim == 0:
        return f"{float(arr):.6g}"
    return np.array2string(arr, precision=5, threshold=8)


def _tol_text(atol, rtol) -> str:
    bits = [f"absolute {atol:g}"] if atol else []
    bits += [f"relative {rtol:g}"] if rtol else []
    return " + ".join(bits) or "exact"


def check_number(value, spec) -> Verdict:
    want = expected_value(spec["expected"])
    atol, rtol = float(spec.get("atol", 1e-8)), float(spec.get("rtol", 1e-6))
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return Verdict(False, f"expected a finite number, got {value!r}")
    if _close(value, want, atol, rtol):
        return Verdict(True, f"{value:.6g} is within tolerance of the expected value")
    return Verdict(False, f"your value {value:.6g} is not within the tolerance "
                          f"({_tol_text(atol, rtol)}) of the expected value {want:.6g}"
                          + (f". Hint: {spec['hint']}" if spec.get("hint") else ""))


def array_from(raw):
    if not (isinstance(raw, dict) and isinstance(raw.get("shape"), list)
            and isinstance(raw.get("data"), list)):
        raise ValueError("malformed array")
    arr = np.asarray(raw["data"], dtype=float)
    return arr.reshape([int(n) for n in raw["shape"]])


def check_array(raw, spec) -> Verdict:
    want = expected_value(spec["expected"])
    got = array_from(raw)
    atol, rtol = float(spec.get("atol", 1e-8)), float(spec.get("rtol", 1e-6))
    if got.shape != want.shape:
        return Verdict(False, f"expected an array of shape {want.shape}, got shape {got.shape}")
    if _close(got, want, atol, rtol):
        return Verdict(True, "all entries within tolerance")
    bad = np.argwhere(~(np.abs(got - want) <= atol + rtol * np.abs(want)))[0]
    idx = tuple(int(i) for i in bad)
    return Verdict(False, f"entry {list(idx)} is {got[idx]:.6g}, expected {want[idx]:.6g} "
                          f"(tolerance {_tol_text(atol, rtol)})")


def check_function(cases_out, spec) -> Verdict:
    """Judge the raw outputs of the student's function on each hidden case."""
    cases = spec["cases"]
    if not isinstance(cases_out, list) or len(cases_out) != len(cases):
        return Verdict(False, "the function was not run on every hidden case")
    for i, (case, out) in enumerate(zip(cases, cases_out)):
        label = case.get("about", f"hidden case {i + 1}")
        if not isinstance(out, dict):
            return Verdict(False, f"{label}: no result")
        if "error" in out:
            return Verdict(False, f"{label}: your function {out['error']}")
        try:
            outputs = [array_from(o) if isinstance(o, dict) else float(o) for o in out["outputs"]]
        except (KeyError, TypeError, ValueError):
            return Verdict(False, f"{label}: your function did not return numbers")
        if len(outputs) != len(case.get("seeds", [None])):
            return Verdict(False, f"{label}: missing results")
        verdict = _check_case(outputs, case["expect"], label)
        if not verdict.ok:
            return verdict
    return Verdict(True, f"correct on all {len(cases)} hidden cases")


_TRANSFORMS = {"identity": lambda v: v, "exp": np.exp}


def _check_case(outputs, expect, label) -> Verdict:
    hint = f" Hint: {expect['hint']}" if expect.get("hint") else ""
    arr = np.asarray(outputs, dtype=float)
    if not np.all(np.isfinite(arr)):
        return Verdict(False, f"{label}: your function returned a non-finite value.{hint}")
    atol, rtol = float(expect.get("atol", 1e-8)), float(expect.get("rtol", 1e-6))
    if "each" in expect:
        want = expected_value(expect["each"])
        for got in outputs:
            if not _close(got, want, atol, rtol):
                return Verdict(False, f"{label}: your function returned {_fmt(got)}, expected "
                                      f"{_fmt(want)} (tolerance {_tol_text(atol, rtol)}).{hint}")
    if expect.get("same") and not all(np.array_equal(arr[0], a) for a in arr[1:]):
        return Verdict(False, f"{label}: two calls with the same seed gave different results; "
                              f"draw every random number from the `rng` argument.{hint}")
    if "mean" in expect or "sd" in expect:
        return _check_statistics(arr, expect, label, hint)
    return Verdict(True, "ok")


def _check_statistics(arr, expect, label, hint) -> Verdict:
    name = expect.get("transform", "identity")
    with np.errstate(over="ignore", invalid="ignore"):
        values = _TRANSFORMS[name](arr)
        what = "your outputs" if name == "identity" else f"{name}(your outputs)"
        n = len(values)
        mean, sd = float(np.mean(values)), float(np.std(values, ddof=1)) if n > 1 else 0.0
    if not (math.isfinite(mean) and math.isfinite(sd)):
        return Verdict(False, f"{label}: over {n} seeds the mean or the spread of {what} is not a "
                              f"finite number; some outputs are far too large.{hint}")
    if expect.get("varies", True) and sd == 0.0:
        return Verdict(False, f"{label}: {what} are identical for {n} different seeds; the "
                              f"estimator must draw its samples from the `rng` argument.{hint}")
    # The tolerance of the mean test is the outputs' own standard error, which outliers inflate:
    # a declared ceiling on the spread (or the expected spread, below) keeps it honest.
    sd_max = expected_value(expect["sd_max"]) if "sd_max" in expect else math.inf
    if not sd <= sd_max:
        return Verdict(False, f"{label}: over {n} seeds the standard deviation of {what} is "
                              f"{sd:.4g}, more than the {sd_max:.4g} a correct estimator stays "
                              f"below.{hint}")
    if "mean" in expect:
        want = expected_value(expect["mean"])
        se = sd / math.sqrt(n)
        z = float(expect.get("z", 4.0))
        if not abs(mean - want) <= z * se + float(expect.get("atol", 0.0)):
            return Verdict(False, f"{label}: over {n} seeds the mean of {what} is {mean:.6g} "
                                  f"(standard error {se:.2g}) but should be {want:.6g}: "
                                  f"{abs(mean - want) / se if se else float('inf'):.1f} standard "
                                  f"errors away.{hint}")
    if "sd" in expect:
        want_sd = expected_value(expect["sd"])
        tol = float(expect.get("sd_rtol", 0.15))
        if not abs(sd - want_sd) <= tol * want_sd:
            return Verdict(False, f"{label}: over {n} seeds the standard deviation of {what} is "
                                  f"{sd:.4g}, expected about {want_sd:.4g} (within {tol:.0%}).{hint}")
    return Verdict(True, "ok")
