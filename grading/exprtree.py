"""Rebuild a sympy expression from the harness's JSON node list, allowing only whitelisted classes.

The node list is untrusted data (the student's process produced it). It is never passed to
``eval``, ``sympify`` or ``parse_expr``: each node names a class from :data:`ALLOWED`, numbers are
parsed from validated digit strings, and symbols are looked up by name among the symbols the
exercise declares (with the exercise's assumptions, whatever the student's symbols assumed).
Rebuilding runs inside the judge process, which has CPU and memory limits, so an expression that
explodes when evaluated (``10**10**9``) costs the student the part, not the grader its batch.
"""
from __future__ import annotations

import re

import sympy as sp

MAX_NODES = 200_000
MAX_DIGITS = 1000
_FLOAT_RE = re.compile(r"^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$", re.IGNORECASE)

_FUNCTIONS = [
    "exp", "log", "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "atan2",
    "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "erf", "erfc", "erfi", "erfinv", "erfcinv",
    "gamma", "loggamma", "lowergamma", "uppergamma", "beta", "digamma", "polygamma", "factorial",
    "binomial", "Abs", "sign", "Heaviside", "Max", "Min", "re", "im", "conjugate", "floor",
    "ceiling", "LambertW", "Piecewise", "And", "Or", "Not",
]
_RELATIONS = ["StrictLessThan", "LessThan", "StrictGreaterThan", "GreaterThan", "Equality", "Unequality"]
_CONSTANTS = {
    "Zero": sp.S.Zero, "One": sp.S.One, "NegativeOne": sp.S.NegativeOne, "Half": sp.S.Half,
    "Pi": sp.pi, "Exp1": sp.E, "ImaginaryUnit": sp.I, "Infinity": sp.oo,
    "NegativeInfinity": -sp.oo, "ComplexInfinity": sp.zoo, "NaN": sp.nan, "EulerGamma": sp.EulerGamma,
    "Catalan": sp.Catalan, "GoldenRatio": sp.GoldenRatio, "BooleanTrue": sp.true,
    "BooleanFalse": sp.false,
}

ALLOWED = {"Add": sp.Add, "Mul": sp.Mul, "Pow": sp.Pow}
ALLOWED.update({name: getattr(sp, name) for name in _FUNCTIONS})
ALLOWED.update({name: getattr(sp.core.relational, name) for name in _RELATIONS})
ALLOWED["ExprCondPair"] = sp.functions.elementary.piecewise.ExprCondPair


class TreeError(ValueError):
    """The answer cannot be rebuilt; the message is meant for the student."""


def _integer(text) -> int:
    if not isinstance(text, str) or not re.fullmatch(r"-?\d{1,%d}" % MAX_DIGITS, text):
        raise TreeError("the answer contains a malformed or huge integer")
    return int(text)


def _atom(cls, payload, symbols):
    if cls == "Symbol":
        if not isinstance(payload, str) or payload not in symbols:
            allowed = ", ".join(sorted(symbols)) or "none"
            raise TreeError(f"your expression uses the symbol {str(payload)[:40]!r}; "
                            f"the symbols allowed here are: {allowed}")
        return symbols[payload]
    if cls == "Integer":
        return sp.Integer(_integer(payload))
    if cls == "Rational":
        if not (isinstance(payload, list) and len(payload) == 2):
            raise TreeError("malformed rational number")
        p, q = _integer(payload[0]), _integer(payload[1])
        if q == 0:
            raise TreeError("the answer contains a division by zero")
        return sp.Rational(p, q)
    if cls == "Float":
        if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], str)
                and len(payload[0]) < 200 and _FLOAT_RE.match(payload[0])
                and isinstance(payload[1], int) and 1 <= payload[1] <= 2000):
            raise TreeError("malformed floating-point number")
        return sp.Float(payload[0], precision=payload[1])
    if cls in _CONSTANTS:
        return _CONSTANTS[cls]
    raise TreeError(f"your answer contains {str(cls)[:40]!r}, which the grader does not accept "
                    "(use elementary functions; evaluate integrals, sums and derivatives first)")


def rebuild(nodes, symbols: dict):
    """Return the sympy object described by ``nodes`` (its last node is the root)."""
    if not isinstance(nodes, list) or not nodes or len(nodes) > MAX_NODES:
        raise TreeError("the answer is empty or too large")
    built = []
    for i, node in enumerate(nodes):
        if not (isinstance(node, list) and len(node) == 3 and isinstance(node[0], str)
                and isinstance(node[2], list)):
            raise TreeError("malformed expression tree")
        cls, payload, children = node
        if not all(isinstance(c, int) and 0 <= c < i for c in children):
            raise TreeError("malformed expression tree")
        args = [built[c] for c in children]
        if cls == "Matrix":
            built.append(_matrix(payload, args))
        elif not children:
            built.append(_atom(cls, payload, symbols))
        elif cls in ALLOWED:
            _guard_size(cls, args)
            try:
                built.append(ALLOWED[cls](*args))
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise TreeError(f"cannot rebuild {cls} from its arguments: {exc}") from None
        else:
            raise TreeError(f"your answer contains {cls[:40]!r}, which the grader does not accept "
                            "(use elementary functions; evaluate integrals, sums and derivatives "
                            "first, e.g. with .doit())")
    return built[-1]


MAX_BITS = 100_000
_INTEGER_FUNCTIONS = {"factorial", "binomial", "gamma", "loggamma", "polygamma", "beta"}


def _guard_size(cls, args) -> None:
    """Refuse exact numbers that sympy would compute eagerly and never finish (``10**10**9``)."""
    if cls == "Pow" and len(args) == 2 and all(isinstance(a, sp.Rational) for a in args):
        base, exponent = args
        digits = max(abs(base.p), abs(base.q), 2).bit_length()
        if abs(exponent.p) * digits > MAX_BITS * max(abs(exponent.q), 1):
            raise TreeError("your answer contains a number too large to evaluate")
    if cls in _INTEGER_FUNCTIONS and any(isinstance(a, sp.Integer) and abs(a) > 10_000 for a in args):
        raise TreeError(f"your answer evaluates {cls} of a huge integer")


def _matrix(payload, args):
    if not (isinstance(payload, list) and len(payload) == 2
            and all(isinstance(n, int) and n >= 0 for n in payload)
            and payload[0] * payload[1] == len(args)):
        raise TreeError("malformed matrix")
    return sp.ImmutableMatrix(payload[0], payload[1], args)


_BINOPS = {"Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mult": lambda a, b: a * b,
           "Div": lambda a, b: a / b, "Pow": lambda a, b: a ** b}
_NAMES = {"pi": sp.pi, "E": sp.E, "I": sp.I, "oo": sp.oo}


def parse_formula(text: str, symbols: dict):
    """Parse a formula such as ``"exp(-x**2/4)/(2*sqrt(pi))"`` without eval.

    Only numbers, declared symbols, ``pi E I oo``, the operators ``+ - * / **`` and calls of
    whitelisted functions (plus ``sqrt`` and ``Rational``) are accepted; anything else raises
    :class:`TreeError`. Used for the reference answers of ``CHECK`` declarations.
    """
    import ast

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            return sp.Integer(node.value) if isinstance(node.value, int) else sp.Float(repr(node.value))
        if isinstance(node, ast.Name):
            if node.id in symbols:
                return symbols[node.id]
            if node.id in _NAMES:
                return _NAMES[node.id]
            raise TreeError(f"unknown name {node.id!r} in formula")
        if isinstance(node, ast.BinOp) and type(node.op).__name__ in _BINOPS:
            return _BINOPS[type(node.op).__name__](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            name = node.func.id
            args = [walk(a) for a in node.args]
            if name == "sqrt":
                return sp.sqrt(*args)
            if name == "Rational":
                return sp.Rational(*args)
            if name == "Matrix":
                raise TreeError("write matrices as nested lists: [[a, b], [c, d]]")
            if name in ALLOWED:
                return ALLOWED[name](*args)
            raise TreeError(f"function {name!r} is not allowed in formulas")
        if isinstance(node, ast.List):
            rows = [walk(e) if not isinstance(e, ast.List) else [walk(x) for x in e.elts]
                    for e in node.elts]
            return sp.ImmutableMatrix(rows)
        raise TreeError(f"unsupported syntax in formula: {type(node).__name__}")

    if not isinstance(text, str) or len(text) > 20_000:
        raise TreeError("formula must be a string")
    return walk(ast.parse(text, mode="eval"))
