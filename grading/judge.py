"""The judge: a clean, time-limited process that turns raw answers into verdicts.

Started by :mod:`grading.program` as ``python -I -m grading.judge CHANNEL_FD`` with
``{"parts": [{"id", "spec", "value"}], "limits": {...}}`` on stdin. No student code runs here; the
student's answers arrive as plain data (expression trees, numbers, function outputs). The
process confines itself (resource limits, Landlock: read-only Python trees, nothing else), and
bounds each part with an alarm so one pathological expression costs that part only. It reports
``{"ev": "judging", "part"}`` before and ``{"ev": "verdict", "part", "ok", "message"}`` after each.
"""
from __future__ import annotations

import json
import os
import signal
import sys

from . import checks, compare, exprtree, sandbox


class _PartTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _PartTimeout()


def judge_part(spec: dict, value: dict) -> compare.Verdict:
    kind = spec["kind"]
    try:
        if kind == "sympy":
            decls = compare.declare_symbols(spec["symbols"])
            symbols = {name: d.symbol for name, d in decls.items()}
            reference = exprtree.parse_formula(spec["reference"], symbols)
            student = exprtree.rebuild(value["tree"], symbols)
            return compare.compare_expr(student, reference, decls, seed=int(spec.get("seed", 0)))
        if kind == "number":
            return checks.check_number(value["number"], spec)
        if kind == "array":
            return checks.check_array(value["array"], spec)
        if kind == "function":
            return checks.check_function(value["cases"], spec)
    except exprtree.TreeError as exc:
        return compare.Verdict(False, str(exc))
    except (KeyError, TypeError, ValueError) as exc:
        return compare.Verdict(False, f"the grader could not read your answer ({type(exc).__name__})")
    return compare.Verdict(False, f"unknown check kind {kind!r}")


def main() -> None:
    fd = int(sys.argv[1])
    job = json.loads(sys.stdin.read())
    limits = job.get("limits", {})
    sandbox.set_limits(limits.get("cpu"), limits.get("memory"), limits.get("fsize"))
    sandbox.confine(read=sandbox.python_read_roots(), write=[os.getcwd()])
    signal.signal(signal.SIGALRM, _on_alarm)

    def send(**event):
        os.write(fd, (json.dumps(event) + "\n").encode())

    for part in job["parts"]:
        send(ev="judging", part=part["id"])
        signal.alarm(int(limits.get("part_seconds", 30)))
        try:
            verdict = judge_part(part["spec"], part["value"])
        except _PartTimeout:
            verdict = compare.Verdict(False, "your answer could not be judged within the time "
                                             "limit (is it extremely large or slow to evaluate?)")
        except RecursionError:
            verdict = compare.Verdict(False, "your answer is nested too deeply to be judged")
        except MemoryError:
            verdict = compare.Verdict(False, "your answer needs too much memory to be judged")
        except Exception as exc:  # noqa: BLE001 - never a silent pass: any failure is a fail
            verdict = compare.Verdict(False, f"the grader could not judge your answer "
                                             f"({type(exc).__name__}: {str(exc)[:200]})")
        finally:
            signal.alarm(0)
        send(ev="verdict", part=part["id"], ok=bool(verdict.ok), message=str(verdict.message))
    send(ev="end")
    os._exit(0)


if __name__ == "__main__":
    main()
