"""Kernel launcher (run as a script, standard library only): confine, then exec the real kernel.

``python -I kernel_launch.py SETTINGS_JSON -- KERNEL_CMD...``; see :mod:`grading.kernel`.
"""
import json
import os
import sys


def _launch(argv):
    settings = json.loads(argv[1])
    cmd = argv[argv.index("--") + 1:]
    connection_file = cmd[cmd.index("-f") + 1] if "-f" in cmd else None
    ports = []
    if connection_file:
        with open(connection_file) as fh:
            info = json.load(fh)
        ports = [info[k] for k in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
                 if k in info]
    here = os.path.dirname(os.path.abspath(__file__))
    import importlib.util
    spec = importlib.util.spec_from_file_location("_grading_sandbox", os.path.join(here, "sandbox.py"))
    sandbox = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sandbox)
    cwd = os.getcwd()
    keep = {k: v for k, v in os.environ.items() if k.startswith(("JPY_", "NBGRADER_"))}
    env = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": cwd, "TMPDIR": cwd,
           "IPYTHONDIR": os.path.join(cwd, ".ipython"), "MPLCONFIGDIR": os.path.join(cwd, ".mpl"),
           "JUPYTER_RUNTIME_DIR": cwd, "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **keep}
    sandbox.seed_matplotlib_cache(env["MPLCONFIGDIR"])
    sandbox.set_limits(settings.get("cpu"), settings.get("memory"), 64 << 20)
    read = list(settings["read"]) + ([connection_file] if connection_file else [])
    sandbox.confine(read=read, write=[cwd], bind_ports=[0, *ports], forbidden=settings.get("forbidden", []))
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)          # the kernel's own fds: student output reaches the grader only
    os.dup2(devnull, 2)          # through the (size-limited) Jupyter messages
    try:
        os.execve(cmd[0], cmd, env)
    except OSError as exc:
        os.write(saved_stderr, f"kernel_launch: cannot start the kernel: {exc}\n".encode())
        raise SystemExit(1)


if __name__ == "__main__":
    _launch(sys.argv)
