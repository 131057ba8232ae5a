"""Instructor commands: ``python -m grading release|autograde|feedback|export``.

release     generate ``exercises/`` (student versions) from ``solutions/`` and record the
            assignments in the gradebook
autograde   copy ``--submissions DIR`` (laid out DIR/<student>/<assignment>/<notebook>.ipynb) into
            ``gradebook/submitted`` and autograde every submission found there, with progress
            output; a broken submission is reported and the batch goes on
feedback    HTML feedback per student into ``gradebook/feedback/<student>/<assignment>/``
export      grades as CSV (``--out``, default ``gradebook/grades.csv``)
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time

from . import course


def cmd_release(args) -> int:
    from nbgrader.converters import GenerateAssignment

    config = course.load_config(args.root, _overrides(args))
    names = args.assignment or course.assignments(args.root)
    for name in names:
        app = course.converter(GenerateAssignment, config, assignment_id=name)
        app.force = True
        app.create_assignment = True
        app.start()
        print(f"released {name} -> {os.path.relpath(app.coursedir.format_path(app.coursedir.release_directory, '.', name), args.root)}")
    return 0


# Student and assignment folder names become nbgrader ids, which nbgrader expands as glob patterns
# and prints: no wildcards, separators or control characters, no leading dot.
_SAFE_NAME = re.compile(r"[^\x00-\x1f\x7f*?\[\]/\\]+")
MAX_FILE_BYTES = 50 << 20
MAX_FILES = 500                # per submission folder (data files are copied into every sandbox)
MAX_SUBMISSION_BYTES = 100 << 20   # per submission folder: it is stored twice and copied per sandbox


def _valid_unicode(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def safe_name(name: str) -> bool:
    """A usable nbgrader id: no wildcards, separators or control characters, no leading dot, and
    valid Unicode (a file name with undecodable bytes arrives with lone surrogates)."""
    return _valid_unicode(name) and bool(_SAFE_NAME.fullmatch(name)) and not name.startswith(".")


def _copy_tree(src: str, dest: str, skipped: list, budget: list | None = None) -> None:
    """Copy the directories and regular files of ``src``; never follow a symbolic link.

    ``budget`` is ``[files left, bytes left]`` for the whole submission folder.
    """
    budget = [MAX_FILES, MAX_SUBMISSION_BYTES] if budget is None else budget
    os.makedirs(dest)
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        if entry.name == ".ipynb_checkpoints":
            continue
        target = os.path.join(dest, entry.name)
        budget[0] -= 1
        if budget[0] < 0:
            if budget[0] == -1:
                skipped.append(f"{src}: everything past the first {MAX_FILES} files")
        elif entry.is_symlink():
            skipped.append(f"{entry.path} (a symbolic link)")
        elif not _valid_unicode(entry.name):
            skipped.append(f"{entry.path} (its name is not valid UTF-8)")
        elif entry.is_dir(follow_symlinks=False):
            _copy_tree(entry.path, target, skipped, budget)
        elif not entry.is_file(follow_symlinks=False):
            skipped.append(f"{entry.path} (not a regular file)")
        elif (size := entry.stat(follow_symlinks=False).st_size) > MAX_FILE_BYTES:
            skipped.append(f"{entry.path} (larger than {MAX_FILE_BYTES >> 20} MB)")
        elif size > budget[1]:
            skipped.append(f"{entry.path} (past {MAX_SUBMISSION_BYTES >> 20} MB for the submission)")
        else:
            budget[1] -= size
            shutil.copyfile(entry.path, target)


def _copy_submissions(src: str, dest: str) -> tuple[int, list]:
    """Copy ``src/<student>/<assignment>/`` into ``dest``; return (copied, messages about what was not)."""
    copied, problems = 0, []
    for student in sorted(os.listdir(src)):
        sdir = os.path.join(src, student)
        if student.startswith(".") or not os.path.isdir(sdir):
            continue
        if os.path.islink(sdir) or not safe_name(student):
            problems.append(f"skipped {sdir!r}: " + ("a symbolic link" if os.path.islink(sdir)
                                                      else "not a usable student id"))
            continue
        for assignment in sorted(os.listdir(sdir)):
            adir = os.path.join(sdir, assignment)
            if not os.path.isdir(adir):
                continue
            if os.path.islink(adir) or not safe_name(assignment):
                problems.append(f"skipped {adir!r}: " + ("a symbolic link" if os.path.islink(adir)
                                                          else "not a usable assignment id"))
                continue
            target = os.path.join(dest, student, assignment)
            if os.path.exists(target):
                shutil.rmtree(target)
            skipped: list = []
            try:
                _copy_tree(adir, target, skipped)
            except OSError as exc:
                problems.append(f"skipped {adir!r}: cannot copy it ({exc})")
                shutil.rmtree(target, ignore_errors=True)
                continue
            problems += [f"not copied: {path}" for path in skipped]
            copied += 1
    return copied, problems


def _known_assignments(config) -> set:
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    with Gradebook(CourseDirectory(config=config).db_url) as gb:
        return {a.name for a in gb.assignments}


def _ensure_in_gradebook(args, config, needed: set) -> None:
    """Record assignments the gradebook does not know yet (generated into gradebook/release)."""
    from nbgrader.converters import GenerateAssignment

    missing = sorted(needed - _known_assignments(config))
    for name in missing:
        app = course.converter(GenerateAssignment, config, assignment_id=name,
                               release_directory=os.path.join("gradebook", "release"))
        app.force = True
        app.create_assignment = True
        app.start()


def _score(config, assignment: str, student: str) -> tuple[float, float, bool]:
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    with Gradebook(CourseDirectory(config=config).db_url) as gb:
        sub = gb.find_submission(assignment, student)
        return float(sub.score), float(sub.max_score), bool(sub.needs_manual_grade)


def cmd_autograde(args) -> int:
    from nbgrader.converters import Autograde

    config = course.load_config(args.root, _overrides(args))
    from nbgrader.coursedir import CourseDirectory
    submitted = CourseDirectory(config=config).format_path(
        CourseDirectory(config=config).submitted_directory, ".", ".")
    submitted = os.path.normpath(submitted)
    problems = []
    if args.submissions:
        os.makedirs(submitted, exist_ok=True)
        n, problems = _copy_submissions(args.submissions, submitted)
        print(f"copied {n} submission(s) from {args.submissions}")
        for line in problems:
            print(line)
    jobs = _find_jobs(submitted)
    if args.assignment:
        jobs = [(s, a) for s, a in jobs if a in args.assignment]
    known = set(course.assignments(args.root)) | _known_assignments(config)
    for student, assignment in [(s, a) for s, a in jobs if a not in known]:
        problems.append(f"skipped {student}/{assignment}: no assignment {assignment!r} in solutions/")
        print(problems[-1])
    jobs = [(s, a) for s, a in jobs if a in known]
    if not jobs:
        print("no submissions found in", submitted)
        return 1
    _ensure_in_gradebook(args, config, {a for _, a in jobs})
    from .sandbox import landlock_abi
    if landlock_abi() < 6:
        print("WARNING: this Linux kernel lacks Landlock (ABI >= 6): student code will NOT be "
              "confined (it could read solutions/ and the gradebook, or signal the grader). "
              "Grade inside a container or VM. See grading/README.md.", flush=True)
    failures = 0
    for i, (student, assignment) in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {student} {assignment} ... ", end="", flush=True)
        started = time.monotonic()
        app = course.converter(Autograde, config, assignment_id=assignment, student_id=student)
        app.force = True
        app.create_student = True
        try:
            app.start()
            score, max_score, manual = _score(config, assignment, student)
            note = " (written parts to grade by hand)" if manual else ""
            print(f"{score:g}/{max_score:g} points{note} [{time.monotonic() - started:.0f} s]", flush=True)
        except BaseException as exc:  # noqa: BLE001 - report and go on with the batch
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures += 1
            print(f"FAILED ({type(exc).__name__}: {str(exc).strip().splitlines()[-1:] or ''})", flush=True)
    print(f"autograded {len(jobs) - failures} of {len(jobs)} submission(s)"
          + (f"; {failures} failed (see messages above)" if failures else "")
          + (f"; {len(problems)} problem(s) with the submitted files (see above)" if problems else ""))
    return 1 if failures or problems else 0


def _find_jobs(submitted: str) -> list:
    """(student, assignment) of every real, safely named folder ``submitted/<student>/<assignment>``."""
    def folders(path):
        return [n for n in sorted(os.listdir(path)) if safe_name(n)
                and os.path.isdir(os.path.join(path, n)) and not os.path.islink(os.path.join(path, n))]
    if not os.path.isdir(submitted):
        return []
    return [(s, a) for s in folders(submitted) for a in folders(os.path.join(submitted, s))]


# Feedback pages typeset their math with a local MathJax (never a CDN): the template
# grading/templates/offline_feedback loads mathjax/tex-svg.js next to the page, copied there from
# the npm package that the book uses too (package.json; `make node` installs it).
FEEDBACK_TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
MATHJAX_SVG = os.path.join(os.path.dirname(FEEDBACK_TEMPLATES), os.pardir, "node_modules", "mathjax",
                           "es5", "tex-svg.js")


def _offline_feedback_config(config) -> None:
    """Point nbconvert's HTMLExporter at the offline feedback template (nbgrader's own template
    directory stays on the search path: the template extends it)."""
    import nbgrader

    nbgrader_templates = os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions",
                                      "formgrader", "templates")
    config.HTMLExporter.template_name = "offline_feedback"
    config.HTMLExporter.extra_template_basedirs = [FEEDBACK_TEMPLATES, nbgrader_templates]


def _install_mathjax(folders) -> bool:
    """Copy MathJax next to every feedback page; False (and a message) if it is not installed."""
    if not os.path.isfile(MATHJAX_SVG):
        print(f"warning: {os.path.normpath(MATHJAX_SVG)} not found: run `make node` so that the "
              "feedback pages can typeset their math (they never load MathJax from a CDN)")
        return False
    for folder in folders:
        os.makedirs(os.path.join(folder, "mathjax"), exist_ok=True)
        shutil.copyfile(MATHJAX_SVG, os.path.join(folder, "mathjax", "tex-svg.js"))
    return True


def cmd_feedback(args) -> int:
    import glob

    from nbgrader.converters import GenerateFeedback

    config = course.load_config(args.root, _overrides(args))
    _offline_feedback_config(config)
    names = args.assignment or sorted(_known_assignments(config))
    status = 0
    for name in names:
        app = course.converter(GenerateFeedback, config, assignment_id=name)
        app.force = True
        graded = app.coursedir.format_path(app.coursedir.autograded_directory, "*", name)
        if not glob.glob(os.path.join(graded, "*.ipynb")):
            print(f"feedback for {name}: no autograded submission yet, skipped")
            continue
        try:
            app.start()
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, KeyboardInterrupt):
                raise
            print(f"feedback for {name}: FAILED ({exc})")
            status = 1
            continue
        out = app.coursedir.format_path(app.coursedir.feedback_directory, "*", name)
        if not _install_mathjax(sorted(glob.glob(out))):
            status = 1
        print(f"feedback for {name} -> {os.path.relpath(os.path.dirname(os.path.dirname(out)), args.root)}")
    return status


def cmd_export(args) -> int:
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.plugins import CsvExportPlugin

    config = course.load_config(args.root, _overrides(args))
    out = os.path.abspath(args.out or os.path.join(args.root, "gradebook", "grades.csv"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    plugin = CsvExportPlugin(config=config)
    plugin.to = out
    with Gradebook(CourseDirectory(config=config).db_url) as gb:
        plugin.export(gb)
    print(f"grades written to {out}")
    return 0


def _overrides(args) -> dict:
    out = {}
    for item in getattr(args, "config", None) or []:
        key, _, value = item.partition("=")
        try:
            import ast
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grading", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=course.ROOT, help="course directory (holds nbgrader_config.py)")
    parser.add_argument("--verbose", action="store_true", help="show nbgrader's own log")
    parser.add_argument("--config", action="append", metavar="Section.key=value",
                        help="override a configuration value, e.g. Execute.timeout=10 (repeatable)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="generate exercises/ from solutions/")
    p.add_argument("assignment", nargs="*", help="assignments (default: all in solutions/)")
    p.set_defaults(func=cmd_release)
    p = sub.add_parser("autograde", help="autograde every submission")
    p.add_argument("--submissions", help="folder DIR/<student>/<assignment>/<notebook>.ipynb to grade")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.set_defaults(func=cmd_autograde)
    p = sub.add_parser("feedback", help="HTML feedback per student")
    p.add_argument("assignment", nargs="*")
    p.set_defaults(func=cmd_feedback)
    p = sub.add_parser("export", help="grades as CSV")
    p.add_argument("--out", help="CSV path (default gradebook/grades.csv)")
    p.set_defaults(func=cmd_export)
    return parser


def _skip_slow_optional_imports() -> None:
    """jsonschema (via nbformat) imports ``rfc3987_syntax`` when installed, which compiles a lark
    grammar at import time (seconds per command). Notebook validation never checks IRI formats,
    and jsonschema treats the module as optional, so it is marked absent for this process."""
    sys.modules.setdefault("rfc3987_syntax", None)


def main(argv=None) -> int:
    # names from submission folders are printed: never let one crash the batch on encoding
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    _skip_slow_optional_imports()
    import warnings
    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    args = build_parser().parse_args(argv)
    args.root = os.path.abspath(args.root)
    course.prepare_environment()
    course.quiet_logs(args.verbose)
    os.chdir(args.root)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
