"""Cheating must not pay: tampered submissions autograded in one batch with an honest one.

Every attack below, tried with plain nbgrader ``assert`` tests, gives the student points (or
kills the batch). Here each tampered part must score 0 while the untampered parts of the same
notebook, and the other students of the batch, are graded normally. The attacks target the
pilot exercise (is_basics/ex1_unbiased_is); the judge-level attacks at the end need no nbgrader.
"""
import copy
import os
import re
import textwrap

import nbformat
import pytest

from grading_helpers import REPO, part_results, read_nb, replace_cells, run_cli, write_submissions

pytestmark = [pytest.mark.xdist_group("grading_attacks"), pytest.mark.slow]

ASSIGNMENT, NOTEBOOK = "is_basics", "ex1_unbiased_is"
SOURCE = os.path.join(REPO, "solutions", ASSIGNMENT, NOTEBOOK + ".ipynb")
PARTS = {"test_weight", "test_evidence", "test_estimator", "test_mc"}
WRONG_EVIDENCE = "evidence_expr = normal_pdf(x, 0, 1)\n"


def _src(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


def attack_submissions(root: str) -> dict:
    """student -> (cell replacements, extra notebook edits) of every tampered submission."""
    solutions = os.path.join(root, "solutions", ASSIGNMENT, NOTEBOOK + ".ipynb")
    gradebook = os.path.join(root, "gradebook", "gradebook.db")
    grading_dir = os.path.join(REPO, "grading")
    return {
        # (a) comparison and truthiness overridden, on a plain object, a sympy subclass, a float
        "overrides": {
            "answer_weight": _src("""
                class AlwaysEqual:
                    def __eq__(self, other): return True
                    def __ne__(self, other): return False
                    def __bool__(self): return True
                    def __hash__(self): return 0
                    def __sub__(self, other): return 0
                    __rsub__ = __sub__
                weight_expr = AlwaysEqual()
            """),
            "answer_evidence": _src("""
                class Everything(sp.Expr):
                    def __eq__(self, other): return True
                    def __ne__(self, other): return False
                    __hash__ = sp.Expr.__hash__
                    def __sub__(self, other): return sp.Integer(0)
                    __rsub__ = __sub__
                    def equals(self, other, failing_expression=False): return True
                class Liar(sp.Symbol):
                    def __eq__(self, other): return True
                    __hash__ = sp.Symbol.__hash__
                evidence_expr = Everything() + Liar("answer")
            """),
            "answer_mc": _src("""
                class Close(float):
                    def __eq__(self, other): return True
                    def __sub__(self, other): return Close(0.0)
                    __rsub__ = __sub__
                    def __abs__(self): return 0.0
                    def __lt__(self, other): return True
                    __le__ = __lt__
                    __hash__ = float.__hash__
                mc_mean_evidence = Close(123.0)
            """),
            # a function that hunts for expected values in its process, frames and inputs
            "answer_estimator": _src("""
                LEAKS = []
                def is_log_evidence(log_joint, proposal, K, rng):
                    import gc, sys
                    if not LEAKS:
                        LEAKS.append([o for o in gc.get_objects() if isinstance(o, dict)
                                      and ("expect" in o or "expected" in o or "reference" in o)])
                    leaks = list(LEAKS[0])
                    frame = sys._getframe(1)
                    while frame is not None:
                        leaks += [v for k, v in frame.f_locals.items() if k in ("expect", "case", "spec")]
                        frame = frame.f_back
                    for cell in (getattr(log_joint, "__closure__", None) or ()):
                        if isinstance(cell.cell_contents, dict):
                            leaks.append(cell.cell_contents)
                    for leak in leaks:
                        found = leak.get("expect", leak) if isinstance(leak, dict) else {}
                        if isinstance(found, dict) and isinstance(found.get("each"), float):
                            return found["each"]
                    return 0.0
            """),
        },
        # (b) library functions replaced: numpy, sympy, math, vi_course, the grading package
        "replaced": {
            "answer_evidence": _src("""
                import math, sys
                import numpy, sympy
                numpy.isclose = lambda *a, **k: True
                numpy.allclose = lambda *a, **k: True
                numpy.testing.assert_allclose = lambda *a, **k: None
                sympy.simplify = lambda *a, **k: sympy.Integer(0)
                sympy.Expr.equals = lambda self, other, *a, **k: True
                math.isclose = lambda *a, **k: True
                math.isfinite = lambda *a, **k: True
                try:
                    import vi_course
                    for name in list(sys.modules):
                        if name.startswith("vi_course"):
                            module = sys.modules[name]
                            for attr in dir(module):
                                if callable(getattr(module, attr)) and not attr.startswith("_"):
                                    setattr(module, attr, lambda *a, **k: 0.0)
                except Exception as exc:
                    print("vi_course:", type(exc).__name__)
                try:
                    import grading.compare, grading.checks, grading.judge
                    grading.compare.compare_expr = lambda *a, **k: grading.compare.Verdict(True, "ok")
                    grading.checks.check_number = lambda *a, **k: grading.compare.Verdict(True, "ok")
                    grading.judge.judge_part = lambda *a, **k: grading.compare.Verdict(True, "ok")
                except Exception as exc:
                    print("grading:", type(exc).__name__)
            """) + WRONG_EVIDENCE,
            "answer_mc": "mc_mean_evidence = 0.5\n",
        },
        # (c) tracebacks silenced and later cells rewritten through get_ipython(), (e) megabytes
        "ipython": {
            "answer_weight": _src("""
                joint = normal_pdf(z, 0, 1) * normal_pdf(x, z, 1)
                weight_expr = joint / normal_pdf(z, m, s**2)
                print("x" * 20_000_000)
                for _ in range(20):
                    print("y" * 1_000_000)
            """),
            "answer_evidence": WRONG_EVIDENCE + _src("""
                ip = get_ipython()
                ip.set_custom_exc((BaseException,), lambda *args, **kwargs: None)
                ip.showtraceback = lambda *args, **kwargs: None
                ip.showsyntaxerror = lambda *args, **kwargs: None
                ip.input_transformers_post.append(lambda lines: ["pass\\n"])
            """),
        },
        # (d) an infinite loop that also ignores the kernel's interrupt
        "loop": {
            "answer_mc": _src("""
                import signal
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                while True:
                    pass
            """),
        },
        # (d) killing the grader and the kernel
        "crash": {
            "answer_mc": _src("""
                import os, signal
                try:
                    os.kill(os.getppid(), signal.SIGKILL)
                except Exception as exc:
                    print("cannot kill the grader:", type(exc).__name__)
                os._exit(3)
            """),
        },
        # forged answers on the harness's result channel: strings a naive judge would evaluate
        "forged": {
            "answer_weight": _src("""
                import json, os, sys
                weight_expr = z
                events = [
                    {"ev": "answer", "part": "test_weight", "value": {"tree": [
                        ["Symbol", "__import__('os').system('touch forged')", []]]}},
                    {"ev": "answer", "part": "test_mc", "value": {"number": "0.16073276729880184"}},
                ]
                try:
                    fd = int(sys.argv[1])
                except (IndexError, ValueError):
                    fd = None
                if fd is not None:
                    for event in events:
                        os.write(fd, (json.dumps(event) + "\\n").encode())
            """),
            # reading the references from disk; writing the gradebook and the grading package
            "answer_evidence": _src(f"""
                import os, re, sqlite3
                leaked = None
                try:
                    text = open({solutions!r}).read()
                    found = re.search(r"'answer': 'evidence_expr'.*?'reference': '([^']*)'", text, re.S)
                    leaked = sp.sympify(found.group(1), locals={{"x": x}})
                except Exception as exc:
                    print("cannot read solutions:", type(exc).__name__)
                try:
                    db = sqlite3.connect({gradebook!r})
                    db.execute("UPDATE grade SET manual_score = 100")
                    db.commit()
                except Exception as exc:
                    print("cannot write the gradebook:", type(exc).__name__)
                try:
                    with open(os.path.join({grading_dir!r}, "pwned.py"), "w") as fh:
                        fh.write("PWNED = True\\n")
                except Exception as exc:
                    print("cannot write the grading package:", type(exc).__name__)
                evidence_expr = leaked if leaked is not None else normal_pdf(x, 0, 1)
            """),
        },
    }


MARKER = f"vi-course-attack-{os.getpid()}"


def _solution(nb, gid: str) -> str:
    """The solution code of answer cell ``gid`` (without the nbgrader markers)."""
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)
    return "\n".join(line for line in cell.source.splitlines() if "### " not in line) + "\n"


def tampered_notebooks(root: str, source) -> dict:
    """student -> notebook of the attacks that edit more than answer cells (files: plant_files)."""
    from grading.spec import strip_hidden
    student_view = copy.deepcopy(source)          # what a student has: no hidden tests
    for cell in student_view.cells:
        cell.source = strip_hidden(cell.source)
    # files of the submission folder: a symlink to the solutions (see plant_files), and
    # live HTML / JavaScript in outputs and in the written answer (formgrader, feedback pages)
    links = replace_cells(source, {
        "answer_evidence": _src("""
            import re
            text = open("notes.txt").read()
            found = re.search(r"'answer': 'evidence_expr'.*?'reference': '([^']*)'", text, re.S)
            evidence_expr = sp.sympify(found.group(1), locals={"x": x})
        """),
        "answer_weight": _solution(source, "answer_weight") + _src("""
            from IPython.display import HTML, Javascript, display
            display(HTML("<img src=x onerror=alert(1)>"))
            display(Javascript("alert(2)"))
        """),
        "proof_unbiased": ("My proof <img src=x onerror=alert(3)> uses $q<p$. <script>alert(4)</script>"
                           " [see](JaVa&#x53;cript:alert(5)) and [the book](https://example.org)."),
    })
    # metadata: a flag-less copy of a test cell's id after it, malformed nbgrader metadata, a
    # deleted answer and test cell pair, another kernel
    meta = copy.deepcopy(student_view)
    meta.cells = [c for c in meta.cells
                  if c.metadata.get("nbgrader", {}).get("grade_id") not in ("answer_mc", "test_mc")]
    meta.cells.append(nbformat.v4.new_code_cell("evidence_expr = 0", metadata={"nbgrader": {
        "grade_id": "test_evidence", "grade": False, "solution": False, "locked": False}}))
    for junk in ("junk", {"grade_id": 5, "grade": True, "points": 9}, {"grade": True, "points": 9}):
        meta.cells.append(nbformat.v4.new_code_cell("pass", metadata={"nbgrader": junk}))
    meta.metadata["kernelspec"] = {"name": "bash", "display_name": "Bash", "language": "bash"}
    # processes, /proc, resource limits, the result channel and the disk
    procs = replace_cells(source, {
        "answer_weight": _src("""
            import json, os, sys
            if len(sys.argv) > 1 and sys.argv[1].isdigit():     # the harness's result channel
                for event in [{"ev": "cell_error", "cell": [1], "error": "x"},
                              {"ev": "answer", "part": ["test_mc"], "value": 1},
                              {"ev": "extract", "part": {"a": 1}}]:
                    os.write(int(sys.argv[1]), (json.dumps(event) + "\\n").encode())
        """) + _solution(source, "answer_weight"),
        "answer_evidence": _src(f"""
            import os, resource, sys
            notes = []
            try:
                open(f"/proc/{{os.getppid()}}/environ", "rb").read()
                notes.append("environ: READ")
            except OSError as exc:
                notes.append(f"environ: {{type(exc).__name__}}")
            for _ in range(3):
                try:
                    pid = os.fork()
                except OSError as exc:
                    notes.append(f"fork: {{type(exc).__name__}}")
                    break
                if pid == 0:
                    os.setsid()
                    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)",
                                              {MARKER!r}])
            else:
                notes.append("fork: allowed")
            try:
                resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY,) * 2)
                notes.append("rlimit: raised")
            except (ValueError, OSError) as exc:
                notes.append(f"rlimit: {{type(exc).__name__}}")
            raise RuntimeError("; ".join(notes))
        """),
        "answer_mc": _src("""
            block = b"\\0" * (50 << 20)
            for i in range(16):
                with open(f"junk{i}", "wb") as fh:
                    fh.write(block)
            mc_mean_evidence = 0.16
        """),
    })
    # a biased estimator (the mean of the log weights) whose rare outliers inflate the standard
    # error of the unbiasedness test; K = 5 (the notebook's own check) is left correct
    outliers = replace_cells(source, {"answer_estimator": _src("""
        def is_log_evidence(log_joint, proposal, K, rng):
            z_samples = proposal.sample(K, rng)
            log_w = log_joint(z_samples) - proposal.log_prob(z_samples)
            if K < 10 and K != 5:
                return 30.0 if rng.random() < 0.01 else float(np.mean(log_w))
            return logsumexp(log_w) - np.log(K)
    """)})
    # memory floods that bypass a per-cell budget of text and data: output metadata, comm (widget)
    # state, display updates; the answers themselves are right
    flood = replace_cells(source, {"answer_weight": _solution(source, "answer_weight") + _src("""
        import sys
        if "ipykernel" in sys.modules:           # the graded kernel, not the answer harness
            from comm import create_comm
            from IPython.display import display
            pad = "x" * (40 << 20)
            for i in range(3):
                display({"text/plain": "ok"}, raw=True, metadata={"pad": pad})
                create_comm(target_name="flood", data={"state": {"pad": pad}, "buffer_paths": []})
            handles = [display("small", display_id=True) for _ in range(8)]
            for handle in handles:
                handle.update("y" * (4 << 20))
            del pad
            for i in range(3):                   # 240000 empty dicts: 1 MB as text, 100 MB as objects
                display({"text/plain": "ok"}, raw=True, metadata={"k": [{}] * 240000})
    """)})
    # many cells, each filling its per-cell budget with 4-byte characters (first: the oversized
    # messages above end the kernel's run, which costs only their sender)
    emoji = _src("""
        import time
        for _ in range(5):
            print("\\U0001F600" * 200000, flush=True)     # 200 k characters, 800 kB in UTF-8
            time.sleep(0.05)
    """)
    flood.cells[1:1] = [nbformat.v4.new_code_cell(emoji) for _ in range(24)]
    return {"links": links, "meta": meta, "procs": procs, "outliers": outliers, "flood": flood}


def plant_files(folder: str, root: str) -> None:
    """Submission folders a student can craft in an archive: symlinks, a FIFO, odd names."""
    incoming = os.path.join(folder, "links", ASSIGNMENT)
    os.symlink(os.path.join(root, "solutions", ASSIGNMENT, NOTEBOOK + ".ipynb"),
               os.path.join(incoming, "notes.txt"))
    os.mkfifo(os.path.join(incoming, "pipe.txt"))
    os.symlink(os.path.join(root, "solutions"), os.path.join(folder, "mirror"))
    os.makedirs(os.path.join(folder, "copycat"))
    os.symlink(os.path.join(folder, "honest", ASSIGNMENT), os.path.join(folder, "copycat", ASSIGNMENT))
    # names that are not valid UTF-8 (printed by the grader), and more data than a submission may hold
    with open(os.path.join(incoming, os.fsdecode(b"data\xff.txt")), "w") as fh:
        fh.write("x")
    for k, megabytes in enumerate((20, 40, 45)):    # the third would pass 100 MB in all
        with open(os.path.join(incoming, f"big{k}.bin"), "wb") as fh:
            fh.truncate(megabytes << 20)     # sparse: apparent size only, nothing on disk
    for student, assignment in (("*", ASSIGNMENT), ("stray", "no_such_assignment"),
                                (os.fsdecode(b"bad\xffname"), ASSIGNMENT)):
        os.makedirs(os.path.join(folder, student, assignment))
        nbformat.write(read_nb(SOURCE), os.path.join(folder, student, assignment, NOTEBOOK + ".ipynb"))


NOT_GRADED = {"mirror": "a symbolic link", "copycat": "a symbolic link", "*": "not a usable student id",
              "bad\\udcffname": "not a usable student id",
              "stray": "no assignment 'no_such_assignment'"}
TAMPERED = {
    "overrides": PARTS,
    "replaced": {"test_evidence", "test_mc"},
    "ipython": {"test_evidence"},
    "loop": {"test_mc"},
    "crash": {"test_mc"},
    "forged": {"test_weight", "test_evidence", "test_mc"},
    "links": {"test_evidence"},
    "meta": {"test_mc"},
    "procs": {"test_evidence", "test_mc"},
    "outliers": {"test_estimator"},
    "flood": set(),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("attacks"))
    root = os.path.join(tmp, "course")
    os.makedirs(root)
    import shutil
    shutil.copytree(os.path.join(REPO, "solutions"), os.path.join(root, "solutions"))
    shutil.copy(os.path.join(REPO, "nbgrader_config.py"), root)
    source = read_nb(SOURCE)
    submissions = {"honest": (ASSIGNMENT, NOTEBOOK, source)}
    for student, replacements in attack_submissions(root).items():
        nb = replace_cells(source, replacements)
        if student == "overrides":          # also edit a test cell and its metadata
            for cell in nb.cells:
                meta = cell.metadata.get("nbgrader", {})
                if meta.get("grade_id") == "test_weight":
                    cell.source = "pass"
                    meta.update(grade=False, points=100, locked=False)
        submissions[student] = (ASSIGNMENT, NOTEBOOK, nb)
    for student, nb in tampered_notebooks(root, source).items():
        submissions[student] = (ASSIGNMENT, NOTEBOOK, nb)
    folder = os.path.join(tmp, "incoming")
    write_submissions(folder, submissions)
    plant_files(folder, root)
    # strict stdout encoding, as under an en_US.UTF-8 locale: a printed undecodable name must not
    # crash the batch
    proc = run_cli(root, "autograde", "--submissions", folder,
                   env_extra={"PYTHONIOENCODING": "utf-8:strict"})
    return {"root": root, "proc": proc, "students": sorted(submissions)}


def _results(batch, student):
    return part_results(batch["root"], student, ASSIGNMENT, NOTEBOOK)


def _assert_tampered(batch, student):
    results = _results(batch, student)
    assert set(results) == PARTS
    for part in PARTS:
        r = results[part]
        if part in TAMPERED[student]:
            assert r["score"] == 0, f"{student} got points on {part}: {r['message']}"
            assert "not correct" in r["message"] or r["message"], r
        else:
            assert r["score"] == r["max"], f"{student}: untampered {part} lost points: {r['message']}"
    return results


def test_the_whole_batch_is_graded(batch):
    out = batch["proc"].stdout
    n = len(batch["students"])
    for k, student in enumerate(batch["students"], 1):
        assert f"[{k}/{n}] {student} {ASSIGNMENT} ... " in out, out + batch["proc"].stderr[-3000:]
    assert f"autograded {n} of {n} submission(s); " in out, out
    assert batch["proc"].returncode == 1, "the skipped submissions must show in the exit status"


def test_symlinks_fifos_odd_names_and_unknown_assignments_are_skipped_with_a_message(batch):
    out = batch["proc"].stdout
    for student, why in NOT_GRADED.items():
        line = next((l for l in out.splitlines() if l.startswith("skipped") and student in l), "")
        assert why in line, out
        assert not os.path.exists(os.path.join(batch["root"], "gradebook", "autograded", student))
    assert "links/is_basics/notes.txt (a symbolic link)" in out
    assert "links/is_basics/pipe.txt (not a regular file)" in out
    assert "links/is_basics/data\\udcff.txt (its name is not valid UTF-8)" in out, out
    assert "links/is_basics/big2.bin (past 100 MB for the submission)" in out, out
    copied = os.path.join(batch["root"], "gradebook", "submitted", "links", ASSIGNMENT)
    assert os.path.exists(os.path.join(copied, "big1.bin"))
    assert not os.path.exists(os.path.join(copied, "big2.bin"))
    message = _assert_tampered(batch, "links")["test_evidence"]["message"]
    assert "FileNotFoundError" in message


def test_honest_student_gets_full_marks(batch):
    for part, r in _results(batch, "honest").items():
        assert r["score"] == r["max"], (part, r["message"])


def test_a_overridden_eq_bool_hash_and_sympy_subclass(batch):
    results = _assert_tampered(batch, "overrides")
    assert "does not accept" in results["test_evidence"]["message"]
    assert "sympy expression" in results["test_weight"]["message"]


def test_a_function_finds_no_reference_in_its_inputs(batch):
    message = _results(batch, "overrides")["test_estimator"]["message"]
    assert "your function returned 0" in message


def test_b_replaced_numpy_sympy_math_vi_course_and_grading_functions(batch):
    results = _assert_tampered(batch, "replaced")
    assert "expected" in results["test_evidence"]["message"]


def test_c_tracebacks_silenced_and_cells_rewritten_via_get_ipython(batch):
    _assert_tampered(batch, "ipython")


def test_e_megabytes_of_output_are_cut(batch):
    path = os.path.join(batch["root"], "gradebook", "autograded", "ipython", ASSIGNMENT,
                        NOTEBOOK + ".ipynb")
    assert os.path.getsize(path) < 3 * 1024 * 1024
    assert _results(batch, "ipython")["test_weight"]["score"] == 1


def test_outliers_cannot_widen_the_unbiasedness_test(batch):
    message = _assert_tampered(batch, "outliers")["test_estimator"]["message"]
    assert "standard deviation" in message and "correct estimator stays below" in message, message


def test_metadata_comm_and_display_update_floods_are_not_kept(batch):
    # 120 MB of output metadata, 120 MB of comm state and 32 MB of display updates: none of it
    # reaches the autograded notebook (nor, before that, the grader's memory), and the student's
    # right answers still score
    _assert_tampered(batch, "flood")
    path = os.path.join(batch["root"], "gradebook", "autograded", "flood", ASSIGNMENT,
                        NOTEBOOK + ".ipynb")
    # 24 cells x 4 MB of emoji (1 M characters each) are cut at 1 MB per cell, counted in UTF-8,
    # and at 8 MB per notebook
    assert os.path.getsize(path) < 12 * 1024 * 1024
    text = open(path, encoding="utf-8").read()
    assert "output truncated by the grader (8 MB per notebook)" in text


def test_d_infinite_loop_ignoring_interrupts(batch):
    results = _assert_tampered(batch, "loop")
    assert "did not finish" in results["test_mc"]["message"]


def test_d_killing_the_grader_or_the_kernel(batch):
    results = _assert_tampered(batch, "crash")
    assert "did not finish" in results["test_mc"]["message"]


def test_outputs_and_written_answers_carry_no_live_html(batch):
    path = os.path.join(batch["root"], "gradebook", "autograded", "links", ASSIGNMENT, NOTEBOOK + ".ipynb")
    nb = read_nb(path)
    mimetypes = {key for cell in nb.cells for out in cell.get("outputs", []) for key in out.get("data", {})}
    assert mimetypes and mimetypes <= {"text/plain", "text/latex", "image/png", "image/jpeg"}, mimetypes
    proof = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "proof_unbiased")
    assert "<img" not in proof.source and "<script" not in proof.source
    assert "$q< p$" in proof.source            # renders as before: TeX ignores the space
    assert "alert(5)" not in proof.source.split("[see](")[1].split(")")[0]
    assert "[the book](https://example.org)" in proof.source


@pytest.mark.parametrize("markdown", [
    "[a](javascript:alert(1))", "[a]( JaVa&#x53;cript:alert(1))", "[a](java&#9;script:alert(1))",
    "[a](data:text/html;base64,PHNjcmlwdD4=)", "[a](vbscript:msgbox)", "[r]: javascript:alert(2)",
    "  [r]:   DATA:text/html,x", "[a](javascript\\:alert(1))",
])
def test_links_with_script_schemes_are_disarmed(markdown):
    from grading.preprocessors import neutralize_markdown

    out = neutralize_markdown(markdown)
    assert "#unsafe-link" in out, out
    assert not re.search(r"(?i)(script|data)\s*:", out.replace("&#x53;", "s")), out


@pytest.mark.parametrize("markdown", [
    "[a](https://example.org/x?y=1)", "[a](#section)", "[a](other.html)", "[m](mailto:a@b.org)",
    "no link: javascript: is a word here", "$a<b$ and $\\langle x \\rangle$",
])
def test_ordinary_markdown_is_left_as_it_renders(markdown):
    from grading.preprocessors import neutralize_markdown

    out = neutralize_markdown(markdown)
    assert "#unsafe-link" not in out
    assert out.replace("< ", "<") == markdown


def test_edited_deleted_and_duplicated_cell_metadata(batch):
    results = _assert_tampered(batch, "meta")
    assert "not defined" in results["test_mc"]["message"]
    text = open(os.path.join(batch["root"], "gradebook", "autograded", "meta", ASSIGNMENT,
                             NOTEBOOK + ".ipynb")).read()
    assert "BEGIN HIDDEN TESTS" not in text and "CHECK =" not in text    # restored test cells


def test_no_process_outlives_the_sandbox_and_proc_shows_no_other_process(batch):
    message = _assert_tampered(batch, "procs")["test_evidence"]["message"]
    assert "environ: PermissionError" in message and "fork: PermissionError" in message, message
    assert "rlimit: raised" not in message
    survivors = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if MARKER.encode() in fh.read():
                    survivors.append(int(pid))
        except OSError:
            continue
    for pid in survivors:                      # clean up after a failure
        os.kill(pid, 9)
    assert not survivors, "a process started by student code survived the grading"


def test_files_are_limited_and_forged_channel_ids_do_not_crash_the_grader(batch):
    results = _assert_tampered(batch, "procs")
    assert "wrote more than" in results["test_mc"]["message"], results["test_mc"]["message"]


def test_forged_channel_messages_are_data_not_code(batch):
    results = _assert_tampered(batch, "forged")
    assert "symbol" in results["test_weight"]["message"]
    assert "finite number" in results["test_mc"]["message"]


def test_solutions_gradebook_and_grading_package_are_out_of_reach(batch):
    _assert_tampered(batch, "forged")
    assert not os.path.exists(os.path.join(REPO, "grading", "pwned.py"))
    from nbgrader.api import Gradebook
    with Gradebook("sqlite:///" + os.path.join(batch["root"], "gradebook", "gradebook.db")) as gb:
        sub = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, "forged")
        assert all(g.manual_score is None for g in sub.grades)
    path = os.path.join(batch["root"], "gradebook", "autograded", "forged", ASSIGNMENT,
                        NOTEBOOK + ".ipynb")
    text = open(path).read()
    assert "cannot read solutions: PermissionError" in text
    assert "cannot write the grading package: PermissionError" in text


# --- the judge on its own: malicious answers as data (no nbgrader, no kernel) -----------------

EVIDENCE_SPEC = {"kind": "sympy", "answer": "evidence_expr", "symbols": {"x": "real"},
                 "reference": "exp(-x**2/4)/(2*sqrt(pi))"}
GOOD_TREE = [["Symbol", "x", []], ["Integer", "2", []], ["Pow", None, [0, 1]],
             ["Rational", ["-1", "4"], []], ["Mul", None, [3, 2]], ["exp", None, [4]],
             ["Pi", None, []], ["Rational", ["-1", "2"], []], ["Pow", None, [6, 7]],
             ["Half", None, []], ["Mul", None, [5, 8, 9]]]
MALICIOUS = {
    "code_in_symbol": [["Symbol", "__import__('os').system('id')", []]],
    "string_tree": "exp(-x**2/4)/(2*sqrt(pi))",
    "string_node": [["Symbol", "x", []], ["eval", "exp(-x**2/4)/(2*sqrt(pi))", [0]]],
    "undefined_function": [["Symbol", "x", []], ["Function", "f", [0]]],
    "lambda_class": [["Symbol", "x", []], ["Lambda", None, [0, 0]]],
    "float_payload": [["Float", ["__import__('os')", 53], []]],
    "power_bomb": [["Integer", "10", []], ["Integer", "9" * 999, []], ["Pow", None, [0, 1]]],
    "factorial_bomb": [["Integer", "9" * 12, []], ["factorial", None, [0]]],
    "forward_reference": [["Add", None, [1, 1]], ["Symbol", "x", []]],
    "self_reference": [["Add", None, [0]]],
    "not_a_list": {"tree": 1},
}


def test_malicious_trees_are_rejected_and_later_parts_still_judged():
    from grading import program
    todo = [{"id": name, "spec": EVIDENCE_SPEC, "value": {"tree": tree}} for name, tree in MALICIOUS.items()]
    todo.append({"id": "honest", "spec": EVIDENCE_SPEC, "value": {"tree": GOOD_TREE}})
    verdicts = program.run_judge(todo, program.Limits(judge_part_seconds=10))
    for name in MALICIOUS:
        assert not verdicts[name].ok, (name, verdicts[name].message)
    assert verdicts["honest"].ok, verdicts["honest"].message
    assert "too large" in verdicts["power_bomb"].message


def test_slow_cells_cannot_stall_the_grader_nor_multiply_its_time_budget():
    """IPython's transformer needs minutes for some crafted cells: it runs in the time-limited
    harness, never in the grader. Cells that keep the harness busy share one time budget, restarts
    included, so a notebook cannot make its grading last (restarts + 1) times longer."""
    import time
    from grading import program, spec
    number = {"spec": spec.normalise({"kind": "number", "answer": "v", "expected": 1.0})}
    keep_busy = _src("""
        import os, sys, time
        while True:                       # never idle: keeps writing to the result channel
            os.write(int(sys.argv[1]), b'{"ev": "ping"}\\n')
            time.sleep(0.2)
    """)
    cells = [program.Cell(0, "v = 1.0"), program.Cell(1, "", part="early"),
             program.Cell(2, "%time w = 1\n" * 3000), program.Cell(3, keep_busy),
             program.Cell(4, keep_busy), program.Cell(5, keep_busy), program.Cell(6, "", part="late")]
    started = time.monotonic()
    verdicts, _ = program.grade(cells, {"early": number, "late": number},
                                program.Limits(cell_seconds=5, total_seconds=12, restarts=3))
    assert verdicts["early"].ok, verdicts["early"].message
    assert not verdicts["late"].ok and "12 s in total" in verdicts["late"].message, verdicts["late"]
    assert time.monotonic() - started < 30


def test_reference_formulas_are_parsed_without_eval():
    from grading.exprtree import TreeError, parse_formula
    with pytest.raises(TreeError):
        parse_formula("__import__('os').system('id')", {})
    with pytest.raises(TreeError):
        parse_formula("x.__class__", {})


# --- control: the same attacks against plain nbgrader asserts succeed --------------------------

PLAIN_CONFIG = """
c = get_config()
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.Execute.timeout = 30
"""
PLAIN_TESTS = {
    "test_evidence": "assert sp.simplify(evidence_expr - sp.exp(-x**2/4)/(2*sp.sqrt(sp.pi))) == 0\n",
    "test_mc": "assert np.isclose(mc_mean_evidence, 0.16073, rtol=0.04)\n",
}


@pytest.mark.xdist_group("grading_control")
def test_control_plain_nbgrader_asserts_are_fooled(tmp_path):
    """Without the out-of-kernel judge, an overridden __eq__ and a replaced numpy.isclose pay."""
    import subprocess
    import sys

    import nbformat
    root = tmp_path / "plain"
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    (root / "nbgrader_config.py").write_text(PLAIN_CONFIG)
    source = read_nb(SOURCE)
    for cell in source.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in PLAIN_TESTS:
            cell.source = PLAIN_TESTS[gid]
    nbformat.write(source, root / "source" / ASSIGNMENT / (NOTEBOOK + ".ipynb"))
    tampered = replace_cells(source, {
        "answer_evidence": _src("""
            class Everything(sp.Expr):
                def __sub__(self, other): return sp.Integer(0)
                __rsub__ = __sub__
            evidence_expr = Everything()
        """),
        "answer_mc": "np.isclose = lambda *a, **k: True\nmc_mean_evidence = 123.0\n",
    })
    target = root / "submitted" / "cheater" / ASSIGNMENT
    target.mkdir(parents=True)
    nbformat.write(tampered, target / (NOTEBOOK + ".ipynb"))
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    nbgrader = [sys.executable, "-m", "nbgrader"]
    for args in (["generate_assignment", ASSIGNMENT], ["autograde", ASSIGNMENT]):
        proc = subprocess.run(nbgrader + args, cwd=root, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{root}/gradebook.db") as gb:
        sub = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, "cheater")
        scores = {g.name: g.score for g in sub.grades}
    assert scores["test_evidence"] == 2 and scores["test_mc"] == 1, scores


@pytest.mark.xdist_group("grading_killed")
def test_a_grader_killed_mid_notebook_leaves_no_hidden_tests_in_the_autograded_copy(tmp_path):
    # the out-of-memory killer (or an impatient instructor) ends the grader with SIGKILL while the
    # kernel runs: the autograded copy written before execution must not hold the hidden tests,
    # or the next `feedback` would publish them
    import shutil
    import signal
    import subprocess
    import time

    from grading_helpers import cli_command

    root = tmp_path / "course"
    shutil.copytree(os.path.join(REPO, "solutions", ASSIGNMENT), root / "solutions" / ASSIGNMENT)
    shutil.copy(os.path.join(REPO, "nbgrader_config.py"), root)
    slow = replace_cells(read_nb(SOURCE), {"answer_weight": "import time\ntime.sleep(600)\n"})
    write_submissions(str(tmp_path / "incoming"), {"victim": (ASSIGNMENT, NOTEBOOK, slow)})
    cmd, env = cli_command(str(root), "autograde", "--submissions", str(tmp_path / "incoming"))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    copy = root / "gradebook" / "autograded" / "victim" / ASSIGNMENT / (NOTEBOOK + ".ipynb")
    try:
        deadline = time.monotonic() + 240
        while not copy.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert copy.exists(), "the autograded copy never appeared"
        time.sleep(2.0)                       # the kernel is now inside the sleeping cell
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    text = copy.read_text()
    assert "BEGIN HIDDEN TESTS" not in text and "CHECK" not in text
    assert "'reference'" not in text and "exp(-x**2/4)" not in text
