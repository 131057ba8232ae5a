"""Symbolic answers: equal to the reference in any equivalent form, or a point where they differ.

1. Numeric probes: both expressions are evaluated (``evalf`` at 30 digits, no lambdify/eval) at
   random points that honour the declared assumptions (``positive`` -> (0.1, 3), ``real`` -> (-3, 3),
   a ``range`` overrides). The first disagreement is a counterexample for the feedback.
2. Exact check: ``simplify(student - reference) == 0`` settles what the probes cannot (too few
   points where the reference is finite) and guards against a numerical false alarm.
"""
from __future__ import annotations

import cmath
import random
from dataclasses import dataclass

import sympy as sp

N_PROBES = 24
RTOL, ATOL = 1e-8, 1e-11


@dataclass
class Verdict:
    ok: bool
    message: str


@dataclass
class SymbolDecl:
    symbol: sp.Symbol
    low: float
    high: float
    integer: bool


def declare_symbols(decl: dict) -> dict:
    """``{"x": "real", "s": "positive", "rho": {"assume": "real", "range": [-0.9, 0.9]}}`` -> SymbolDecl."""
    out = {}
    for name, info in decl.items():
        if isinstance(info, str):
            info = {"assume": info}
        words = set(info.get("assume", "").split())
        flags = {w: True for w in words if w in
                 ("real", "positive", "negative", "nonnegative", "nonpositive", "integer", "nonzero")}
        integer = "integer" in words
        if "range" in info:
            low, high = (float(v) for v in info["range"])
        elif "positive" in words:
            low, high = (1.0, 8.0) if integer else (0.1, 3.0)
        elif "negative" in words:
            low, high = (-8.0, -1.0) if integer else (-3.0, -0.1)
        elif "nonnegative" in words:
            low, high = (0.0, 8.0) if integer else (0.0, 3.0)
        else:
            low, high = (-5.0, 5.0) if integer else (-3.0, 3.0)
        out[name] = SymbolDecl(sp.Symbol(name, **flags), low, high, integer)
    return out


def _value(expr, point):
    try:
        value = expr.xreplace(point).evalf(30)
        return complex(value)
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return None


def _finite(v):
    return v is not None and cmath.isfinite(v)


def _fmt(v: complex) -> str:
    if v is None:
        return "no number"
    if not cmath.isfinite(v):
        return "a non-finite value"
    if abs(v.imag) > 1e-12 * max(1.0, abs(v.real)):
        return f"{v.real:.6g}{v.imag:+.6g}i"
    return f"{v.real:.6g}"


def _point_text(point, names) -> str:
    parts = [f"{s.name}={float(v):.4g}" for s, v in point.items() if s.name in names]
    return "at " + ", ".join(parts) if parts else "as a constant"


def _sample(decls, rng):
    point = {}
    for d in decls.values():
        if d.integer:
            point[d.symbol] = sp.Integer(rng.randint(int(d.low), int(d.high)))
        else:
            point[d.symbol] = sp.Float(rng.uniform(d.low, d.high), 30)
    return point


def _exactly_equal(student, reference) -> bool:
    try:
        return sp.simplify(student - reference) == 0
    except Exception:  # noqa: BLE001 - any failure means "not shown equal"
        return False


def compare_expr(student, reference, decls: dict, seed: int = 0, n_probes: int = N_PROBES) -> Verdict:
    """Compare two scalar sympy expressions built over the same declared symbols."""
    if isinstance(reference, sp.MatrixBase):
        return _compare_matrix(student, reference, decls, seed, n_probes)
    if not isinstance(student, sp.Expr):
        return Verdict(False, f"expected a sympy expression, got {type(student).__name__}")
    names = {s.name for s in (student.free_symbols | reference.free_symbols)}
    rng = random.Random(seed)
    agreed = 0
    for _ in range(4 * n_probes):
        if agreed >= n_probes:
            break
        point = _sample(decls, rng)
        expected = _value(reference, point)
        if not _finite(expected):
            continue
        got = _value(student, point)
        if _finite(got) and abs(got - expected) <= ATOL + RTOL * abs(expected):
            agreed += 1
            continue
        if _exactly_equal(student, reference):
            return Verdict(True, "equal to the reference (shown symbolically)")
        return Verdict(False, f"{_point_text(point, names)} your expression gives {_fmt(got)}, "
                              f"expected {_fmt(expected)}")
    if agreed >= n_probes // 2:
        return Verdict(True, f"agrees with the reference at {agreed} random points")
    if _exactly_equal(student, reference):
        return Verdict(True, "equal to the reference (shown symbolically)")
    return Verdict(False, "could not confirm that your expression equals the reference "
                          "(it could not be evaluated at enough points)")


def _compare_matrix(student, reference, decls, seed, n_probes) -> Verdict:
    if not isinstance(student, sp.MatrixBase):
        return Verdict(False, f"expected a {reference.rows}x{reference.cols} sympy Matrix")
    if student.shape != reference.shape:
        return Verdict(False, f"expected shape {reference.shape}, got {student.shape}")
    for i in range(reference.rows):
        for j in range(reference.cols):
            v = compare_expr(student[i, j], reference[i, j], decls, seed, n_probes)
            if not v.ok:
                return Verdict(False, f"entry [{i}, {j}]: {v.message}")
    return Verdict(True, "every entry equals the reference")
