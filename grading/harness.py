"""Run a student's notebook cells in a fresh sandboxed interpreter and report the answers as plain data.

Started by :mod:`grading.runner` as ``python -I harness.py CHANNEL_FD``; the job (cells, parts,
hidden inputs, limits, sandbox paths) arrives as JSON on stdin. Events go out as JSON lines on the
private channel, one per line::

    {"ev": "start", "landlock": 7}
    {"ev": "cell", "cell": 3}                      (about to run cell 3)
    {"ev": "cell_error", "cell": 3, "error": "NameError: name 'np' is not defined"}
    {"ev": "answer", "part": "test_a", "value": {...}}   or   {..., "error": "..."}
    {"ev": "end"}

Nothing here is trusted by the grader: student code runs in this process and may rewrite any of
it. The grader treats every event as a claim about the answer and judges it elsewhere; the
reference answers never enter this process.
"""
import builtins
import importlib.util
import json
import os
import sys
import traceback

_HERE = os.path.dirname(os.path.abspath(__file__))
_MAX_NODES = 200_000
_MAX_ARRAY = 1_000_000


def _load_sibling(name):
    spec = importlib.util.spec_from_file_location(f"_grading_{name}", os.path.join(_HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class AnswerError(Exception):
    """The answer is missing or has the wrong type; the message is shown as is."""


class Channel:
    def __init__(self, fd):
        self.fd = fd

    def send(self, **event):
        data = (json.dumps(event, allow_nan=True) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]


def _short_error(exc, limit=1500):
    lines = traceback.format_exception_only(type(exc), exc)
    text = "".join(lines).strip()
    tb = traceback.extract_tb(exc.__traceback__)
    where = [f"line {fr.lineno} of {fr.filename}" for fr in tb if fr.filename.startswith("<cell")]
    if where:
        text += f" (at {where[-1]})"
    return text[:limit]


class IPythonStub:
    """Stands in for ``get_ipython()``: magics do nothing, cell magics run their body."""

    def __init__(self, namespace):
        self._ns = namespace

    def run_cell_magic(self, name, line, body):
        if name in ("time", "timeit", "capture", "prun"):
            exec(compile(body, "<cell magic>", "exec"), self._ns)

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def to_python(source):
    """IPython syntax (magics, ``!cmd``) to plain Python calling ``get_ipython()``.

    Done here, under the harness's time limits: IPython's transformer takes minutes on some
    crafted cells, which must not stall the grader.
    """
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - compile() reports the syntax error
        return source


def _sympy_class_name(node, sympy_prefix="sympy."):
    for cls in type(node).__mro__:
        if cls.__module__.startswith(sympy_prefix):
            return cls.__name__
    return type(node).__name__


def encode_sympy(obj, sp):
    """A sympy expression as a flat list of nodes ``[class, payload, child indices]`` (children first)."""
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        obj = sp.Integer(obj) if isinstance(obj, int) else sp.Float(obj)
    if isinstance(obj, sp.MatrixBase):
        nodes = []
        children = []
        for element in obj:
            sub = encode_sympy(element, sp)
            offset = len(nodes)
            nodes.extend([c, p, [k + offset for k in kids]] for c, p, kids in sub)
            children.append(len(nodes) - 1)
        nodes.append(["Matrix", [int(obj.rows), int(obj.cols)], children])
        return nodes
    if not isinstance(obj, sp.Basic):
        raise TypeError(f"expected a sympy expression, got {type(obj).__name__}")
    nodes, index, on_path = [], {}, set()
    stack = [(obj, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if key in index:
            continue
        if len(nodes) > _MAX_NODES:
            raise ValueError("the expression is too large")
        if isinstance(node, (sp.Symbol, sp.Number)) or not node.args:
            nodes.append(_encode_atom(node, sp))
            index[key] = len(nodes) - 1
            continue
        if not expanded:
            if key in on_path:
                raise ValueError("the expression contains itself")
            on_path.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.args))
            continue
        on_path.discard(key)
        nodes.append([_sympy_class_name(node), None, [index[id(c)] for c in node.args]])
        index[key] = len(nodes) - 1
    return nodes


def _encode_atom(node, sp):
    if isinstance(node, sp.Symbol):
        return ["Symbol", str(node.name), []]
    if isinstance(node, sp.Integer):
        return ["Integer", str(int(node.p)), []]
    if isinstance(node, sp.Rational):
        return ["Rational", [str(int(node.p)), str(int(node.q))], []]
    if isinstance(node, sp.Float):
        return ["Float", [str(node), int(node._prec)], []]
    return [_sympy_class_name(node), None, []]


def encode_number(obj):
    if isinstance(obj, (str, bytes)) or obj is None:
        raise AnswerError(f"expected a number, got {type(obj).__name__}")
    try:
        value = complex(obj)
    except (TypeError, ValueError):
        raise AnswerError(f"expected a number, got {type(obj).__name__} {str(obj)[:60]!r}") from None
    if value.imag != 0:
        raise AnswerError("expected a real number, got a complex one")
    return float(value.real)


def encode_array(obj, np):
    arr = np.asarray(obj, dtype=float)
    if arr.size > _MAX_ARRAY:
        raise ValueError(f"the array has {arr.size} elements, more than {_MAX_ARRAY}")
    return {"shape": list(arr.shape), "data": [float(v) for v in arr.reshape(-1)]}


def call_cases(func, part, np, inputs):
    """Call the student's function on every hidden case; return raw outputs (no expected values)."""
    results = []
    for case in part["cases"]:
        outputs = []
        try:
            for seed in case.get("seeds", [None]):
                args = inputs.build(case.get("args", []), seed)
                kwargs = inputs.build(case.get("kwargs", {}), seed)
                out = func(*args, **kwargs)
                outputs.append(encode_array(out, np) if case.get("returns") == "array"
                               else encode_number(out))
        except AnswerError as exc:
            results.append({"error": f"returned a value the grader cannot use ({exc})"})
            continue
        except BaseException as exc:  # noqa: BLE001 - the student's function may raise anything
            results.append({"error": f"raised {_short_error(exc)}"})
            continue
        results.append({"outputs": outputs})
    return results


def extract(part, namespace, np, sp, inputs):
    name = part["answer"]
    if name not in namespace:
        raise AnswerError(f"`{name}` is not defined (did the cell that defines it run without error?)")
    obj = namespace[name]
    kind = part["kind"]
    if kind == "sympy":
        return {"tree": encode_sympy(obj, sp)}
    if kind == "number":
        return {"number": encode_number(obj)}
    if kind == "array":
        return {"array": encode_array(obj, np)}
    if kind == "function":
        if not callable(obj):
            raise AnswerError(f"`{name}` must be a function, got {type(obj).__name__}")
        return {"cases": call_cases(obj, part, np, inputs)}
    raise ValueError(f"unknown kind {kind!r}")


def main():
    channel = Channel(int(sys.argv[1]))
    job = json.loads(sys.stdin.read())
    sys.stdin.close()
    sandbox = _load_sibling("sandbox")
    inputs = _load_sibling("inputs")
    import numpy as np
    import sympy as sp
    limits = job.get("limits", {})
    sandbox.set_limits(limits.get("cpu"), limits.get("memory"), limits.get("fsize"), limits.get("nproc"))
    confined = sandbox.confine(read=job["read"], write=job["write"], forbidden=job.get("forbidden", ()))
    channel.send(ev="start", **confined)

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    namespace["get_ipython"] = lambda: IPythonStub(namespace)
    namespace["display"] = lambda *args, **kwargs: None      # a builtin in Jupyter kernels
    skip = set(job.get("skip", []))
    for step in job["steps"]:
        if "cell" in step:
            if step["cell"] in skip:
                continue
            channel.send(ev="cell", cell=step["cell"])
            try:
                exec(compile(to_python(step["source"]), f"<cell {step['cell'] + 1}>", "exec"), namespace)
            except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt included
                channel.send(ev="cell_error", cell=step["cell"], error=_short_error(exc))
        else:
            channel.send(ev="extract", part=step["part"])
            try:
                value = extract(step, namespace, np, sp, inputs)
            except AnswerError as exc:
                channel.send(ev="answer", part=step["part"], error=str(exc))
            except BaseException as exc:  # noqa: BLE001
                channel.send(ev="answer", part=step["part"],
                             error=f"`{step['answer']}` could not be read: {_short_error(exc)}")
            else:
                channel.send(ev="answer", part=step["part"], value=value)
    channel.send(ev="end")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
