#!/usr/bin/env python
"""Build the online book into ``_build/html`` with Jupyter Book 1, treating every warning as an error.

Usage (``make book`` runs the first form)::

    .venv/bin/python scripts/build_book.py            # execute changed chapters, reuse the cache
    .venv/bin/python scripts/build_book.py --force    # re-read and re-execute every chapter
    CI=true .venv/bin/python scripts/build_book.py    # what CI does: same as --force

What it does:

1. Chapters are executed while they are read. Locally, outputs are cached in ``_build/.jupyter_cache``
   (a chapter re-executes when its code changes); the cache is dropped when the sources of the
   ``vi_course`` library change, because cached outputs would otherwise hide a library change. With
   ``--force`` or ``CI=true`` every chapter is re-read and executed from scratch.
2. Sphinx runs with ``-W -n --keep-going``: any warning (a cell that raises, output on stderr, a
   broken reference, a missing citation) makes the build fail, after all problems are reported.
3. Progress is printed line by line with the elapsed time: the page being read (and executed), the
   page being written, and the time each notebook took.
4. After the build the site is checked: every page of ``_toc.yml`` was built, the MathJax file that
   ``mathjax_path`` names exists inside the site, and no page references a script, stylesheet, font
   or other resource outside the site (plain ``<a href>`` links to external references are fine).

This file is also a small Sphinx extension, registered in ``_config.yml`` under
``sphinx.local_extensions``, so the same behaviour holds for a plain ``jupyter-book build .``:

* ``mathjax_path`` must be a relative path resolving outside ``_static/``; MathJax's ``es5`` folder is
  copied there from ``node_modules/mathjax`` (installed by ``npm ci``, see package.json);
* each notebook page's download menu offers the executed ``.ipynb`` besides the source ``.md``;
* after the build, the execution time of every notebook page is written to
  ``_build/execution_times.json`` (the command line adds the duration of a clean build, one that
  executed every chapter); tests/test_book.py holds them to the budgets of issue 3.

Exit status: 0 when the book built with no warning and passed the checks, 1 otherwise.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import posixpath
import re
import shutil
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
HTML = BUILD / "html"
MATHJAX_SOURCE = Path("node_modules") / "mathjax" / "es5"  # relative to the book's root
LIBRARY_STAMP = BUILD / ".vi_course_fingerprint"
EXECUTION_REPORT = BUILD / "execution_times.json"  # seconds per chapter, and of the last clean build
CHAPTER_BUDGET_S = 20.0  # each chapter should execute in under this many seconds (issue 3)
CLEAN_BUILD_BUDGET_S = 180.0  # a build that executes every chapter should take less (issue 3)


# ================================================================================================
# Checks on the built site (also imported by tests/test_book.py)
# ================================================================================================

# <link rel=...> values that make the browser fetch the target.
_FETCHING_LINK_RELS = {
    "stylesheet", "preload", "prefetch", "modulepreload", "icon", "shortcut", "apple-touch-icon",
    "manifest", "preconnect", "dns-prefetch", "prerender", "mask-icon",
}
# Elements and attributes whose URL the browser loads by itself (an <a href> is only a link).
_LOADING_ATTRS = {
    "script": ("src",), "img": ("src", "srcset"), "iframe": ("src",), "frame": ("src",),
    "embed": ("src",), "object": ("data",), "source": ("src", "srcset"), "video": ("src", "poster"),
    "audio": ("src",), "track": ("src",), "input": ("src",), "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
}
_CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*([^'")\s]+)""", re.IGNORECASE)


def is_external(url: str) -> bool:
    """True if ``url`` would be fetched from another host (http:, https:, ws:, or ``//host/...``)."""
    url = url.strip()
    if url.startswith("//"):
        return True
    scheme = urlsplit(url).scheme.lower()
    return scheme in {"http", "https", "ws", "wss", "ftp"}


class _ResourceParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []  # (what, url)
        self._in_style = False

    def _add(self, what, url):
        for part in url.split(","):  # srcset: "a.png 1x, b.png 2x"
            candidate = part.strip().split(" ")[0]
            if candidate and is_external(candidate):
                self.found.append((what, candidate))

    def handle_starttag(self, tag, attrs):
        attrs = {k.lower(): (v or "") for k, v in attrs}
        if tag == "link":
            rels = set(attrs.get("rel", "").lower().split())
            if rels & _FETCHING_LINK_RELS:
                self._add(f"<link rel={attrs.get('rel')}>", attrs.get("href", ""))
        for attr in _LOADING_ATTRS.get(tag, ()):
            if attr in attrs:
                self._add(f"<{tag} {attr}>", attrs[attr])
        if "style" in attrs:
            for url in _CSS_URL.findall(attrs["style"]):
                self._add(f"<{tag} style>", url)
        if tag == "style":
            self._in_style = True

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            for url in _CSS_URL.findall(data):
                self._add("<style>", url)


def external_resources_in_html(text: str) -> list[tuple[str, str]]:
    """Resources that an HTML document would load from outside its site: [(element, url), ...]."""
    parser = _ResourceParser()
    parser.feed(text)
    parser.close()
    return parser.found


def external_resources_in_css(text: str) -> list[tuple[str, str]]:
    """``url(...)`` and ``@import`` targets of a stylesheet that point outside the site."""
    return [("css url()", u) for u in _CSS_URL.findall(text) if is_external(u)]


def find_external_resources(site: Path) -> list[tuple[str, str, str]]:
    """Scan every .html and .css file under ``site``: [(relative file, element, url), ...]."""
    problems = []
    for path in sorted(site.rglob("*")):
        if path.suffix not in {".html", ".htm", ".css"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        scan = external_resources_in_css if path.suffix == ".css" else external_resources_in_html
        problems.extend((str(path.relative_to(site)), what, url) for what, url in scan(text))
    return problems


def mathjax_target(mathjax_path: str) -> str:
    """Where ``mathjax_path`` lands in the built site (Sphinx resolves it relative to _static/).

    Raises ValueError if it is not a local path or if it falls under _static/ or outside the site.
    """
    if not mathjax_path or is_external(mathjax_path) or ":" in mathjax_path.split("/")[0]:
        raise ValueError(
            f"mathjax_path must be a relative path to the local MathJax copy, got {mathjax_path!r}")
    target = posixpath.normpath(posixpath.join("_static", mathjax_path))
    if target.startswith("_static/") or target.startswith("../") or target.startswith("/"):
        raise ValueError(
            f"mathjax_path {mathjax_path!r} resolves to {target!r}: it must resolve inside the site "
            "but outside _static/ (e.g. '../_mathjax/tex-chtml.js')")
    return target


def configured_mathjax_path(root: Path = ROOT) -> str:
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    return ((config.get("sphinx") or {}).get("config") or {}).get("mathjax_path", "")


def toc_docnames(root: Path = ROOT) -> list[str]:
    """Every document of _toc.yml, in reading order (root first)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts") or [{"chapters": toc.get("chapters")}]:
        walk(part.get("chapters"))
    return [posixpath.splitext(n)[0] for n in names]


def check_site(site: Path = HTML, root: Path = ROOT) -> list[str]:
    """Problems with the built site, as readable messages (empty list: all good)."""
    problems = []
    for doc in toc_docnames(root):
        if not (site / f"{doc}.html").is_file():
            problems.append(f"page {doc}.html was not built")
    try:
        target = mathjax_target(configured_mathjax_path(root))
    except ValueError as exc:
        problems.append(str(exc))
    else:
        if not (site / target).is_file():
            problems.append(f"MathJax file {target} (from mathjax_path) is missing from the site")
    for where, what, url in find_external_resources(site):
        problems.append(f"{where}: {what} loads an external resource: {url}")
    return problems


# ================================================================================================
# Sphinx extension part (loaded through _config.yml: sphinx.local_extensions.build_book)
# ================================================================================================


def _check_mathjax_path(app, config):
    from sphinx.errors import ConfigError

    try:
        mathjax_target(config.mathjax_path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _install_mathjax(app):
    """Copy MathJax's es5 folder to where mathjax_path points inside the output folder."""
    from sphinx.errors import ExtensionError

    if getattr(app.builder, "format", None) != "html":
        return
    target = mathjax_target(app.config.mathjax_path)  # e.g. "_mathjax/tex-chtml.js"
    folder, _, entry = target.partition("/")
    source = Path(app.srcdir) / MATHJAX_SOURCE
    if not (source / entry).is_file():
        raise ExtensionError(
            f"{source / entry} not found: install the local MathJax with `npm ci` (make node)")
    dest = Path(app.outdir) / folder
    version = (source.parent / "package.json").read_text(encoding="utf-8")
    stamp = dest / ".installed-from-package.json"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == version:
        return
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    stamp.write_text(version, encoding="utf-8")


def _offer_executed_notebook(app, pagename, templatename, context, doctree):
    """Let sphinx-book-theme's download menu offer the executed .ipynb of a notebook page."""
    if doctree is None or context.get("ipynb_source"):
        return
    if "kernelspec" not in app.env.metadata.get(pagename, {}):
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    dest = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, dest)
    context["ipynb_source"] = f"{pagename}.ipynb"


def _record_execution_times(app, exception):
    """Write how long each notebook page took to execute to _build/execution_times.json (read by
    tests/test_book.py, which holds every chapter to CHAPTER_BUDGET_S). For a page taken from the
    cache, myst-nb reports the run time recorded when the cache entry was made."""
    if exception is not None or getattr(app.builder, "format", None) != "html":
        return
    try:
        from myst_nb.sphinx_ import NbMetadataCollector
    except ImportError:
        return
    times = {}
    for docname, data in sorted(NbMetadataCollector.get_doc_data(app.env).items()):
        result = data.get("exec_data") or {}
        if result.get("runtime") is not None:
            times[docname] = {"seconds": round(float(result["runtime"]), 3),
                              "method": result.get("method"), "succeeded": result.get("succeeded")}
    report = Path(app.outdir).parent / EXECUTION_REPORT.name
    previous = {}
    if report.is_file():
        try:
            previous = json.loads(report.read_text(encoding="utf-8"))
        except ValueError:
            previous = {}
    previous["chapters"] = times
    report.write_text(json.dumps(previous, indent=2) + "\n", encoding="utf-8")


def setup(app):
    app.connect("config-inited", _check_mathjax_path)
    app.connect("builder-inited", _install_mathjax)
    app.connect("build-finished", _record_execution_times)
    # before sphinx-book-theme builds its header buttons (priority 501)
    app.connect("html-page-context", _offer_executed_notebook, priority=400)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


# ================================================================================================
# Command line
# ================================================================================================


class _TimedStream:
    """A text stream that prefixes every line with the time elapsed since the build started, and
    collects the lines that report Sphinx warnings and errors."""

    _PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL|SEVERE)\b[:(]")
    _EXECUTED = re.compile(r"(\S+): Executed notebook in ([0-9.]+) seconds")

    def __init__(self, stream, start, lock):
        self.stream, self.start, self.lock = stream, start, lock
        self.at_line_start = True
        self.problems: list[str] = []
        self.executed: dict[str, float] = {}  # source path -> seconds
        self._line = ""

    def write(self, text):
        with self.lock:
            return self._write(text)

    def _write(self, text):
        for piece in re.split(r"(\r\n|\r|\n)", text):
            if not piece:
                continue
            if piece in ("\r\n", "\r", "\n"):
                self.stream.write("\n")
                if self._PROBLEM.search(self._line):
                    self.problems.append(self._line.strip())
                if match := self._EXECUTED.search(self._line):
                    self.executed[match.group(1)] = float(match.group(2))
                self._line, self.at_line_start = "", True
                continue
            if self.at_line_start:
                self.stream.write(f"[{time.perf_counter() - self.start:7.1f}s] ")
                self.at_line_start = False
            self._line += piece
            self.stream.write(piece)
        self.stream.flush()
        return len(text)

    def flush(self):
        self.stream.flush()

    def isatty(self):
        return False

    def fileno(self):
        return self.stream.fileno()


# Notices that notebook kernels print on their stderr and that say nothing about the book.
_KERNEL_NOISE = re.compile(r"Kernel is running over TCP without encryption")


def _route_subprocess_stderr(err: _TimedStream):
    """Send what child processes (the notebook kernels) write to file descriptor 2 through ``err``,
    so it is timestamped too and known noise can be dropped. Returns a function undoing this."""
    try:
        original = os.dup(2)
    except OSError:
        return lambda: None
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    err.stream = os.fdopen(os.dup(original), "w", buffering=1, encoding="utf-8", errors="replace")

    def pump():
        with os.fdopen(read_end, "r", encoding="utf-8", errors="replace") as pipe:
            for line in pipe:
                if not _KERNEL_NOISE.search(line):
                    err.write(line)

    thread = threading.Thread(target=pump, name="stderr-pump", daemon=True)
    thread.start()

    def restore():
        os.dup2(original, 2)  # closes the last write end we hold: the pump sees end of file
        os.close(original)
        thread.join(timeout=5)
        err.stream.flush()

    return restore


def library_fingerprint(root: Path = ROOT) -> str:
    """Hash of the vi_course sources and the pinned environment (what chapter outputs depend on)."""
    digest = hashlib.sha256()
    files = sorted((root / "vi_course").rglob("*.py"))
    files += [root / "pyproject.toml", root / "constraints.txt"]
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _warm_up_matplotlib():
    """Build matplotlib's font cache now: the first import in a kernel would otherwise print a
    notice on stderr, which the book treats as an error."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.font_manager  # noqa: F401
    except ImportError:
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true",
                        help="re-read and re-execute every chapter (default when CI=true)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    lock = threading.Lock()
    out = _TimedStream(sys.__stdout__, start, lock)
    err = _TimedStream(sys.__stderr__, start, lock)
    sys.stdout, sys.stderr = out, err
    restore_fd2 = _route_subprocess_stderr(err)
    try:
        return _build(args, start, out, err)
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        restore_fd2()


def _build(args, start, out, err) -> int:
    force = args.force or os.environ.get("CI", "").strip().lower() == "true"

    fingerprint = library_fingerprint()
    stale_library = (not LIBRARY_STAMP.is_file()
                     or LIBRARY_STAMP.read_text(encoding="utf-8") != fingerprint)
    cache = BUILD / ".jupyter_cache"
    if force or stale_library:
        reason = "forced (--force or CI=true)" if force else "vi_course changed since the last build"
        print(f"Executing every chapter from scratch: {reason}")
        shutil.rmtree(cache, ignore_errors=True)
        # Whatever this build caches was executed against the current library.
        BUILD.mkdir(exist_ok=True)
        LIBRARY_STAMP.write_text(fingerprint, encoding="utf-8")
    else:
        print("Executing changed chapters only (cache: _build/.jupyter_cache)")

    _warm_up_matplotlib()
    # The kernels must draw figures inline: with MPLBACKEND=Agg (as the Makefile exports for the
    # tests) plt.show() would display nothing and every figure would vanish from the book.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiet debugpy notice in kernels

    from jupyter_book import __version__ as jb_version
    from jupyter_book.sphinx import build_sphinx

    if not sys.__stdout__.isatty():
        from sphinx.util.console import nocolor

        nocolor()
    print(f"Jupyter Book {jb_version}: building {ROOT} -> {HTML}")
    result = build_sphinx(
        ROOT,
        HTML,
        use_external_toc=True,
        noconfig=True,
        path_config=str(ROOT / "_config.yml"),
        confoverrides={
            "external_toc_path": (ROOT / "_toc.yml").as_posix(),
            "latex_individualpages": False,
            "nitpicky": True,
            "nb_execution_mode": "force" if force else "cache",
        },
        builder="html",
        warningiserror=True,
        keep_going=True,
        freshenv=force or stale_library,
        # Serial reading: Jupyter Book's sphinx_multitoc_numbering is not declared parallel-safe,
        # and asking for parallel reading would only produce a warning (an error here).
        jobs=1,
    )

    executed = {**out.executed, **err.executed}
    if executed:
        print(f"\nExecution time per chapter (budget {CHAPTER_BUDGET_S:.0f} s each):")
        for path, seconds in sorted(executed.items(), key=lambda item: -item[1]):
            flag = "   <-- over budget" if seconds > CHAPTER_BUDGET_S else ""
            print(f"  {seconds:6.1f} s  {os.path.relpath(path, ROOT)}{flag}")
    failed = result != 0 or bool(err.problems) or bool(out.problems)
    if not failed:
        problems = check_site(HTML)
        if problems:
            print("\nThe built site failed its checks:")
            for problem in problems:
                print(f"  - {problem}")
            failed = True
    elapsed = time.perf_counter() - start
    if failed:
        if isinstance(result, BaseException):
            print(f"\nBuild crashed: {result!r}")
        problems = list(dict.fromkeys(err.problems + out.problems))
        if problems:
            print("\nProblems (each one fails the build):")
            for line in problems:
                print(f"  {line}")
        print(f"\nBOOK BUILD FAILED after {elapsed:.1f} s "
              f"(warnings are errors; cell errors and stderr output count as warnings)")
        return 1
    if force or stale_library:
        # every chapter was executed from scratch: record the time of this clean build
        _record_clean_build(elapsed)
    print(f"\nBook built in {elapsed:.1f} s: open {HTML / 'index.html'}")
    return 0


def _record_clean_build(seconds: float) -> None:
    report = {}
    if EXECUTION_REPORT.is_file():
        try:
            report = json.loads(EXECUTION_REPORT.read_text(encoding="utf-8"))
        except ValueError:
            report = {}
    report["last_clean_build_seconds"] = round(seconds, 1)
    EXECUTION_REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    flag = "   <-- over budget" if seconds > CLEAN_BUILD_BUDGET_S else ""
    print(f"Clean build (every chapter executed): {seconds:.1f} s, budget "
          f"{CLEAN_BUILD_BUDGET_S:.0f} s{flag}")


if __name__ == "__main__":
    sys.exit(main())
