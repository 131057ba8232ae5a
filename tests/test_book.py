"""Checks of the online book that need no browser.

The source checks always run. The checks of the built site need ``_build/html`` (``make test`` builds
the book first; ``make test-fast`` does not, and those checks are then skipped with a reason).
"""
from __future__ import annotations

import ast
import importlib.util
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
ERRATA_TESTS = ROOT / "tests" / "test_errata.py"


def _load_build_book():
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_book = _load_build_book()


def _toc():
    return yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))


def _source(docname: str) -> Path:
    for suffix in (".md", ".ipynb"):
        path = ROOT / f"{docname}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(docname)


def _front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    return yaml.safe_load(match.group(1)) if match else {}


def _chapters():
    """Docnames of the root page and of every chapter outside the Appendices part."""
    toc = _toc()
    names = [toc["root"]]
    for part in toc.get("parts", []):
        if part.get("caption") == "Appendices":
            continue
        names.extend(entry["file"] for entry in part.get("chapters", []))
    return names


DOCNAMES = build_book.toc_docnames(ROOT)
CHAPTERS = _chapters()
FOUNDATIONS = ["book/grid_integration", "book/importance_sampling", "book/elbo_kl",
               "book/vi_optimisation", "book/stochastic_gradients", "book/reinforce",
               "book/mean_field"]

needs_build = pytest.mark.skipif(
    not (HTML / "index.html").is_file(),
    reason="the book is not built (_build/html missing): run `make book` (make test does)")


# --- sources ---------------------------------------------------------------------------------


@pytest.mark.parametrize("docname", DOCNAMES)
def test_every_toc_entry_exists(docname):
    assert _source(docname).is_file(), f"{docname} is listed in _toc.yml but has no .md/.ipynb file"


def test_toc_structure():
    toc = _toc()
    assert toc["format"] == "jb-book"
    assert toc["root"] == "book/intro"
    captions = [part["caption"] for part in toc["parts"]]
    assert captions[0] == "Foundations" and captions[-1] == "Appendices"
    foundations = [entry["file"] for entry in toc["parts"][0]["chapters"]]
    assert foundations == FOUNDATIONS
    appendices = [entry["file"] for entry in toc["parts"][-1]["chapters"]]
    assert appendices == ["book/errata", "book/references", "book/notation"]
    assert len(DOCNAMES) == len(set(DOCNAMES)), "a page is listed twice in _toc.yml"


def test_every_page_in_book_folder_is_in_the_toc():
    # only_build_toc_files: a chapter missing from _toc.yml would silently not be built
    pages = {f"book/{p.stem}" for p in (ROOT / "book").glob("*.md")}
    pages |= {f"book/{p.stem}" for p in (ROOT / "book").glob("*.ipynb")}
    missing = sorted(pages - set(DOCNAMES))
    assert not missing, f"pages in book/ that _toc.yml does not list: {missing}"


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_is_a_myst_notebook_with_python3_kernel(docname):
    path = _source(docname)
    assert path.suffix == ".md", f"{path}: chapters are MyST markdown notebooks (.md)"
    meta = _front_matter(path)
    kernelspec = meta.get("kernelspec") or {}
    assert kernelspec.get("name") == "python3", f"{path}: kernelspec.name must be python3"
    assert kernelspec.get("language") == "python", f"{path}: kernelspec.language must be python"
    representation = (meta.get("jupytext") or {}).get("text_representation") or {}
    assert representation.get("format_name") == "myst", f"{path}: jupytext format must be myst"
    text = path.read_text(encoding="utf-8")
    assert re.search(r"^```\{code-cell\} (ipython3|python3?)\s*$", text, re.MULTILINE), (
        f"{path}: a chapter has at least one {{code-cell}} ipython3")
    assert re.search(r"^# \S", text, re.MULTILINE), f"{path}: a chapter starts with a # title"

    import jupytext

    notebook = jupytext.read(path)
    assert any(cell.cell_type == "code" for cell in notebook.cells)


def test_bibliography_has_the_required_entries_and_every_citation_resolves():
    from pybtex.database import parse_file

    bib = parse_file(str(ROOT / "book" / "references.bib"))
    required = {
        "ambrogioni2020": ("misc", "2020"),
        "blei2017": ("article", "2017"),
        "kucukelbir2017": ("article", "2017"),
        "robbins1951": ("article", "1951"),
        "kingma2015adam": ("inproceedings", "2015"),
        "williams1992": ("article", "1992"),
        "kingma2014vae": ("inproceedings", "2014"),
        "turing_advi": ("misc", None),
        "mixture_notes": ("misc", None),
    }
    for key, (kind, year) in required.items():
        assert key in bib.entries, f"references.bib lacks {key}"
        entry = bib.entries[key]
        assert entry.type == kind, f"{key}: expected @{kind}, got @{entry.type}"
        assert entry.fields.get("title"), f"{key}: no title"
        if year:
            assert entry.fields.get("year") == year, f"{key}: expected year {year}"
    cited = set()
    for path in (ROOT / "book").glob("*.md"):
        for keys in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", path.read_text(encoding="utf-8")):
            cited.update(k.strip() for k in keys.split(","))
    unknown = sorted(cited - set(bib.entries))
    assert not unknown, f"citations without a references.bib entry: {unknown}"


def _test_names(path) -> set[str]:
    """Names of the test functions (module level or in a Test class) defined in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            names.add(node.name)
    return names


def test_errata_entries_and_their_tests_match():
    text = (ROOT / "book" / "errata.md").read_text(encoding="utf-8")
    visible = "\n".join(line for line in text.splitlines() if not line.startswith("%"))
    cited = re.findall(r"tests/(test_\w+\.py)::(?:\w+::)?(test_\w+)", visible)
    assert cited, "errata.md names no test"
    missing = sorted(f"{f}::{t}" for f, t in cited
                     if not (ROOT / "tests" / f).exists() or t not in _test_names(ROOT / "tests" / f))
    assert not missing, f"errata.md names tests that do not exist: {missing}"
    named_here = {t for f, t in cited if f == ERRATA_TESTS.name}
    unnamed = _test_names(ERRATA_TESTS) - named_here
    assert not unnamed, f"tests in tests/test_errata.py not named in errata.md: {sorted(unnamed)}"
    # every entry has a label, a heading, and the four fields
    entries = re.findall(r"^\(errata-e(\d+)\)=\n### E(\d+)\. ", visible, re.MULTILINE)
    assert entries and all(a.lstrip("0") == b for a, b in entries)
    numbers = [int(b) for _, b in entries]
    assert numbers == list(range(1, len(numbers) + 1)), "errata entries are numbered E1, E2, ..."
    for block in re.split(r"^\(errata-e\d+\)=\n", visible, flags=re.MULTILINE)[1:]:
        for field in ("Source", "What it says", "Correction", "Checked by"):
            assert re.search(rf"^{field}\n: ", block, re.MULTILINE), (
                f"errata entry {block.splitlines()[0]!r} lacks the field {field!r}")
        checked = block.split("Checked by\n", 1)[1]
        assert re.search(r"tests/test_\w+\.py::(\w+::)?test_", checked), (
            f"errata entry {block.splitlines()[0]!r} names no test")


def test_mathjax_path_is_local_and_outside_static():
    path = build_book.configured_mathjax_path(ROOT)
    target = build_book.mathjax_target(path)  # raises for a CDN or a _static/ path
    assert not target.startswith("_static/")
    folder, _, entry = target.partition("/")
    assert (ROOT / "node_modules" / "mathjax" / "es5" / entry).is_file(), (
        "the local MathJax is not installed: run `make node` (npm ci)")


@pytest.mark.parametrize("bad", [
    "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js",
    "//cdn.example.org/tex-chtml.js",
    "mathjax/tex-chtml.js",          # would land under _static/
    "../../tex-chtml.js",            # outside the site
])
def test_mathjax_target_rejects_remote_or_static_paths(bad):
    with pytest.raises(ValueError):
        build_book.mathjax_target(bad)


def test_external_resource_scanner_finds_what_it_should(tmp_path):
    html = """<html><head>
      <script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>
      <link rel="stylesheet" href="//fonts.googleapis.com/css?family=Roboto">
      <link rel="canonical" href="https://example.org/book/">
      <style>@font-face { src: url("https://fonts.gstatic.com/x.woff2"); }</style>
      <script src="../_mathjax/tex-chtml.js"></script>
    </head><body>
      <a href="https://doi.org/10.1214/aoms/1177729586">a reference</a>
      <img src="http://example.org/figure.png">
      <img src="../_images/local.png" srcset="../_images/a.png 1x, https://x.org/b.png 2x">
      <div style="background: url(https://x.org/bg.png)"></div>
    </body></html>"""
    (tmp_path / "page.html").write_text(html)
    (tmp_path / "theme.css").write_text("@import 'https://x.org/t.css'; a { b: url(local.woff); }")
    found = {url for _, _, url in build_book.find_external_resources(tmp_path)}
    assert found == {
        "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js",
        "//fonts.googleapis.com/css?family=Roboto",
        "https://fonts.gstatic.com/x.woff2",
        "http://example.org/figure.png",
        "https://x.org/b.png",
        "https://x.org/bg.png",
        "https://x.org/t.css",
    }


# --- the built site ---------------------------------------------------------------------------


@needs_build
@pytest.mark.parametrize("docname", DOCNAMES)
def test_every_toc_page_was_built(docname):
    assert (HTML / f"{docname}.html").is_file()


@needs_build
def test_built_site_loads_nothing_from_outside():
    problems = build_book.find_external_resources(HTML)
    assert not problems, "external resources in the built book:\n" + "\n".join(
        f"  {where}: {what} {url}" for where, what, url in problems)


@needs_build
def test_mathjax_file_is_in_the_build_and_pages_with_math_load_it():
    target = build_book.mathjax_target(build_book.configured_mathjax_path(ROOT))
    assert (HTML / target).is_file(), f"{target} missing from the built site"
    assert (HTML / posixpath.dirname(target) / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    pages_with_math = 0
    for docname in DOCNAMES:
        page = HTML / f"{docname}.html"
        text = page.read_text(encoding="utf-8")
        if 'class="math' not in text:
            continue
        pages_with_math += 1
        sources = re.findall(r'<script[^>]*\ssrc="([^"]*tex-(?:chtml|svg)[^"]*)"', text)
        assert sources, f"{docname}.html has math but does not load MathJax"
        for src in sources:
            assert not build_book.is_external(src), f"{docname}.html loads MathJax from {src}"
            resolved = (page.parent / unquote(urlsplit(src).path)).resolve()
            assert resolved == (HTML / target).resolve(), f"{docname}.html: {src} -> {resolved}"
    assert pages_with_math >= 2, "expected math on the intro and errata pages at least"


@needs_build
@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_offers_its_source_and_notebook_for_download(docname):
    text = (HTML / f"{docname}.html").read_text(encoding="utf-8")
    page_dir = (HTML / docname).parent
    for suffix in (".md", ".ipynb"):
        links = re.findall(rf'href="([^"]*_sources/{re.escape(docname)}{re.escape(suffix)})"', text)
        assert links, f"{docname}.html offers no {suffix} download"
        assert (page_dir / links[0]).resolve().is_file(), f"{links[0]} is not in the build"


@needs_build
def test_build_book_site_check_passes():
    assert build_book.check_site(HTML, ROOT) == []


# --- code cells fit the page ------------------------------------------------------------------

# Characters per line of a code cell that the page shows without horizontal scrolling: the content
# column of sphinx-book-theme holds about 88 characters of code at its full width, and
# _static/code-cells.css scales the code font so that 88 fit at every desktop width
# (tests/test_browser.py checks that no cell scrolls).
MAX_CODE_LINE = 88


def _long_code_lines(path: Path) -> list[str]:
    """Code-cell source lines of a MyST notebook longer than MAX_CODE_LINE, read as Jupyter Book
    reads the cells (jupytext), so that metadata such as figure captions does not count."""
    import jupytext

    too_long = []
    for number, cell in enumerate(jupytext.read(path).cells, start=1):
        if cell.cell_type == "code":
            too_long += [f"cell {number}: {len(line)} characters: {line}"
                         for line in cell.source.splitlines() if len(line) > MAX_CODE_LINE]
    return too_long


@pytest.mark.parametrize("docname", DOCNAMES)
def test_code_cell_lines_fit_the_page(docname):
    path = _source(docname)
    too_long = _long_code_lines(path)
    assert not too_long, (f"{path.name}: code lines longer than {MAX_CODE_LINE} characters "
                          "scroll horizontally in the book:\n  " + "\n  ".join(too_long))


def test_code_line_check_catches_a_long_line_but_not_a_long_caption(tmp_path):
    header = _source("book/intro").read_text(encoding="utf-8").split("\n---\n", 1)[0]
    long_line = "x = " + " + ".join(["1"] * 40)
    caption = "a caption " * 20
    page = tmp_path / "page.md"
    page.write_text(f"{header}\n---\n\n# A page\n\n```{{code-cell}} ipython3\n---\nmystnb:\n"
                    f"  figure:\n    caption: '{caption}'\n---\ny = 1\n```\n\n"
                    f"```{{code-cell}} ipython3\n{long_line}\n```\n", encoding="utf-8")
    assert len(long_line) > MAX_CODE_LINE and len(caption) > MAX_CODE_LINE
    found = _long_code_lines(page)
    assert len(found) == 1 and found[0].endswith(long_line), found


def _output_lines(output) -> list[str]:
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = (output.get("data") or {}).get("text/plain", "")
    return ("".join(text) if isinstance(text, list) else text).splitlines()


@needs_build
@pytest.mark.parametrize("docname", CHAPTERS)
def test_printed_output_lines_fit_the_page(docname):
    import json

    executed = ROOT / "_build" / "jupyter_execute" / f"{docname}.ipynb"
    assert executed.is_file(), f"{executed} missing: the chapter was not executed"
    cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    too_long = [f"{len(line)} characters: {line}"
                for cell in cells if cell["cell_type"] == "code"
                for output in cell.get("outputs", []) for line in _output_lines(output)
                if len(line) > MAX_CODE_LINE]
    assert not too_long, (f"{docname}: printed lines longer than {MAX_CODE_LINE} characters "
                          "scroll horizontally:\n  " + "\n  ".join(too_long))


# --- the Exercises sections link the student notebooks ---------------------------------------

EXERCISES = ROOT / "exercises"
SOLUTIONS = ROOT / "solutions"
# {download}`text <../exercises/folder/notebook.ipynb>` (the path is relative to book/)
_DOWNLOAD_ROLE = re.compile(r"\{download\}`[^`<]*<([^`>]+)>`")
_EXERCISE_PATH = re.compile(r"exercises/[\w-]+/[\w-]+\.ipynb")


def _exercises_section(docname: str) -> str:
    text = _source(docname).read_text(encoding="utf-8")
    assert "\n## Exercises\n" in text, f"{docname} has no '## Exercises' section"
    section = text.split("\n## Exercises\n", 1)[1]
    return re.split(r"^## ", section, maxsplit=1, flags=re.M)[0]


def _downloads(text: str) -> list[str]:
    return _DOWNLOAD_ROLE.findall(text)


def test_every_exercise_notebook_is_linked_from_a_chapter():
    student = {p.relative_to(ROOT).as_posix() for p in EXERCISES.glob("*/*.ipynb")}
    assert student, "exercises/ holds no notebook"
    linked = set()
    for docname in CHAPTERS[1:]:
        for target in _downloads(_source(docname).read_text(encoding="utf-8")):
            linked.add(posixpath.normpath(posixpath.join("book", target)))
    missing = sorted(student - linked)
    assert not missing, f"student notebooks that no chapter links: {missing}"


@pytest.mark.parametrize("docname", CHAPTERS[1:])
def test_exercises_section_links_each_notebook_it_names(docname):
    text = _source(docname).read_text(encoding="utf-8")
    section = _exercises_section(docname)
    targets = _downloads(text)
    for target in targets:
        resolved = (ROOT / "book" / target).resolve()
        assert resolved.is_file(), f"{docname}: {{download}} target {target} does not exist"
        relative = resolved.relative_to(ROOT).as_posix()
        assert _EXERCISE_PATH.fullmatch(relative), (
            f"{docname}: downloads must be student notebooks in exercises/, got {relative}")
    # every notebook path the section mentions is a link a reader can click
    linked = {posixpath.normpath(posixpath.join("book", t)) for t in targets}
    mentioned = set(_EXERCISE_PATH.findall(section))
    assert mentioned <= linked, (
        f"{docname}: notebooks named in plain text instead of linked: {sorted(mentioned - linked)}")
    # a notebook that exists under the name the section uses is linked, not left as text
    for name in re.findall(r"`(ex[\w-]*\.ipynb)`", section):
        assert not list(EXERCISES.glob(f"*/{name}")), (
            f"{docname}: `{name}` is plain text; link it with {{download}}")
    # nothing in the chapter points at the instructor notebooks
    assert not re.search(r"\{(download|doc|ref)\}`[^`]*solutions/", text)
    assert not re.search(r"\]\([^)]*solutions/", text)


@needs_build
@pytest.mark.parametrize("docname", CHAPTERS[1:])
def test_exercise_links_resolve_to_the_student_notebooks_in_the_site(docname):
    page = HTML / f"{docname}.html"
    html = page.read_text(encoding="utf-8")
    hrefs = re.findall(r'<a class="reference download internal"[^>]*href="([^"]+)"', html)
    expected = [(ROOT / "book" / t).resolve() for t in _downloads(_source(docname).read_text(
        encoding="utf-8"))]
    assert len(hrefs) == len(expected), f"{docname}: {len(hrefs)} download links, expected " \
                                        f"{len(expected)}"
    for href, source in zip(hrefs, expected):
        target = (page.parent / unquote(urlsplit(href).path)).resolve()
        assert target.is_relative_to(HTML.resolve()), f"{docname}: {href} leaves the site"
        assert target.is_file(), f"{docname}: {href} is not in the built site"
        assert target.name == source.name
        assert target.read_bytes() == source.read_bytes(), (
            f"{docname}: {href} differs from {source.relative_to(ROOT)}; rebuild the book")


@needs_build
def test_site_publishes_no_instructor_notebook():
    solution_bytes = {p.read_bytes() for p in SOLUTIONS.rglob("*.ipynb")}
    assert solution_bytes, "solutions/ holds no notebook"
    leaked = []
    for path in HTML.rglob("*"):
        if not path.is_file() or path.suffix not in {".ipynb", ".html", ".txt", ".md", ".js"}:
            continue
        data = path.read_bytes()
        if data in solution_bytes or b"BEGIN SOLUTION" in data or b"BEGIN HIDDEN TESTS" in data:
            leaked.append(str(path.relative_to(HTML)))
        if path.suffix == ".html" and re.search(rb'href="[^"]*solutions/', data):
            leaked.append(f"{path.relative_to(HTML)} links solutions/")
    assert not leaked, f"instructor material in the built book: {leaked}"
    downloads = [p for p in (HTML / "_downloads").rglob("*") if p.is_file()]
    student = {p.read_bytes() for p in EXERCISES.rglob("*.ipynb")}
    assert downloads and all(p.read_bytes() in student for p in downloads), (
        "every file offered under _downloads/ is a student notebook from exercises/")


# --- execution budgets (issue 3) --------------------------------------------------------------


def _execution_report() -> dict:
    import json

    report = ROOT / "_build" / build_book.EXECUTION_REPORT.name
    assert report.is_file(), f"{report} missing: build the book with `make book`"
    return json.loads(report.read_text(encoding="utf-8"))


@needs_build
@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_executes_within_its_budget(docname):
    times = _execution_report().get("chapters", {})
    assert docname in times, f"{docname}: no execution time recorded (was it executed?)"
    record = times[docname]
    assert record["succeeded"] is True, f"{docname}: execution failed"
    assert record["seconds"] < build_book.CHAPTER_BUDGET_S, (
        f"{docname} took {record['seconds']:.1f} s to execute, budget "
        f"{build_book.CHAPTER_BUDGET_S:.0f} s")


@needs_build
def test_last_clean_build_was_within_its_budget():
    seconds = _execution_report().get("last_clean_build_seconds")
    if seconds is None:
        pytest.skip("no clean build recorded yet: run `scripts/build_book.py --force` (CI=true)")
    assert seconds < build_book.CLEAN_BUILD_BUDGET_S, (
        f"the last clean build took {seconds:.0f} s, budget {build_book.CLEAN_BUILD_BUDGET_S:.0f} s")
