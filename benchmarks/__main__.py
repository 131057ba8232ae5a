"""Run every benchmark module ``benchmarks/bench_*.py`` (each defines ``main()``), or the ones named.

Usage: ``python -m benchmarks [cavi] [advi]``
"""
import importlib
import pkgutil
import sys

import benchmarks


def main(argv):
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    wanted = [f"bench_{a}" for a in argv] or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; available: {[n[6:] for n in names]}")
    for name in wanted:
        print(f"\n=== {name[6:]} ===", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
