"""The built book in a real browser: Debian's chromium driven by Playwright, with no network.

A threaded HTTP server on 127.0.0.1 (random free port) serves ``_build/html``. Every request to any
other host is aborted and recorded, and a test fails if one was made. Each page of ``_toc.yml`` is
opened and checked: MathJax typeset all the math (nothing raw is left), every image loaded, no cell
output shows an error, and the previous/next links lead to the neighbouring pages. The search page
must find a word. No code cell scrolls horizontally, and every download link of an Exercises
section downloads the student notebook from ``exercises/``. One screenshot per page is saved under
``_build/screenshots/`` for review.

Needs ``/usr/bin/chromium`` (``make chromium``) and a built book (``make book``); ``make test`` does
both first. Without them these tests fail rather than skip.
"""
from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group(name="browser")]

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
LOCAL_HOST = "127.0.0.1"


def _toc_docnames():
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.toc_docnames(ROOT)


DOCNAMES = _toc_docnames()


# --- fixtures -----------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - keep the test output clean
        pass


@pytest.fixture(scope="module")
def site():
    """Base URL of the built book, served on 127.0.0.1 at a free port."""
    if not (HTML / "index.html").is_file():
        pytest.fail(f"{HTML} has no index.html: build the book first with `make book`")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer((LOCAL_HOST, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="book-server", daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL_HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium with `make chromium` "
                    "(apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


class NetworkGuard:
    """Aborts and records every request that leaves 127.0.0.1; records local failures and page
    errors too."""

    def __init__(self):
        self.blocked: list[str] = []
        self.missing: list[str] = []
        self.page_errors: list[str] = []

    def route(self, route):
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in {"data", "blob", "about", "file"} or parts.hostname == LOCAL_HOST:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def response(self, response):
        parts = urlsplit(response.url)
        if (parts.hostname == LOCAL_HOST and response.status >= 400
                and not parts.path.endswith("/favicon.ico")):
            self.missing.append(f"{response.status} {response.url}")

    def check(self):
        problems = [f"request to the outside (blocked): {u}" for u in self.blocked]
        problems += [f"local resource failed: {u}" for u in self.missing]
        problems += [f"JavaScript error: {e}" for e in self.page_errors]
        assert not problems, "\n".join(problems)


@pytest.fixture
def page(browser):
    """A fresh page whose network is confined to 127.0.0.1; fails the test on any escape."""
    guard = NetworkGuard()
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  service_workers="block")
    context.route("**/*", guard.route)
    tab = context.new_page()
    tab.on("response", guard.response)
    tab.on("pageerror", lambda exc: guard.page_errors.append(str(exc)))
    tab.set_default_timeout(20_000)
    tab.guard = guard
    try:
        yield tab
    finally:
        context.close()
    guard.check()


# --- helpers run in the page ------------------------------------------------------------------

WAIT_FOR_MATHJAX = """
async () => {
  const mj = window.MathJax;
  if (!mj || !mj.version) return {loaded: false};
  if (mj.startup && mj.startup.promise) await mj.startup.promise;
  return {loaded: true, version: mj.version};
}
"""

MATH_REPORT = """
() => {
  const maths = Array.from(document.querySelectorAll('.math'));
  const untypeset = maths.filter(m => !m.querySelector('mjx-container'))
                         .map(m => m.textContent.trim().slice(0, 80));
  const errors = Array.from(document.querySelectorAll('mjx-merror'))
                      .map(e => e.textContent.slice(0, 80));
  const undefinedMacros = Array.from(document.querySelectorAll('mjx-container [style*="color: red"]'))
                      .map(e => e.textContent.slice(0, 80));
  const article = document.querySelector('article.bd-article') || document.querySelector('main')
                  || document.body;
  const copy = article.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight')
      .forEach(e => e.remove());
  return {count: maths.length, containers: document.querySelectorAll('mjx-container').length,
          untypeset, errors, undefinedMacros, text: copy.textContent};
}
"""

BROKEN_IMAGES = """
async () => {
  const images = Array.from(document.images);
  images.forEach(img => { img.loading = 'eager'; });
  await Promise.all(images.map(img => img.complete ? null : new Promise(resolve => {
    img.addEventListener('load', resolve); img.addEventListener('error', resolve);
  })));
  return {count: images.length,
          broken: images.filter(img => !(img.naturalWidth > 0)).map(img => img.getAttribute('src'))};
}
"""

OUTPUT_ERRORS = """
() => {
  const bad = [];
  document.querySelectorAll('.output.error, .output.traceback, .cell_output .traceback')
    .forEach(e => bad.push('error output: ' + e.textContent.trim().slice(0, 200)));
  document.querySelectorAll('.output.stderr')
    .forEach(e => { if (/Error|Traceback/.test(e.textContent))
                      bad.push('stderr: ' + e.textContent.trim().slice(0, 200)); });
  document.querySelectorAll('.cell_output')
    .forEach(e => { if (/Traceback \\(most recent call last\\)|Error:/.test(e.textContent))
                      bad.push('output: ' + e.textContent.trim().slice(0, 200)); });
  return bad;
}
"""

CODE_OVERFLOW = """
() => Array.from(document.querySelectorAll('div.cell div.highlight pre'))
  .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => ({where: pre.closest('.cell_output') ? 'output' : 'code',
                overflow: pre.scrollWidth - pre.clientWidth,
                line: pre.textContent.split('\\n')
                        .reduce((a, b) => (a.length >= b.length ? a : b)).slice(0, 120)}))
"""

DOWNLOAD_LINKS = """
() => Array.from(document.querySelectorAll('a.reference.download'))
  .map(a => ({href: a.getAttribute('href'), text: a.textContent.trim(),
              inExercises: !!a.closest('section#exercises')}))
"""

RAW_MATH = [
    ("$$", re.compile(r"\$\$")),
    ("\\[", re.compile(r"\\\[")),
    ("\\(", re.compile(r"\\\(")),
    ("\\begin{", re.compile(r"\\begin\{")),
    ("$...\\macro...$", re.compile(r"\$[^$\s][^$]*\\[A-Za-z]+[^$]*\$")),
]


def _open(page, url):
    page.goto(url, wait_until="load")
    return page.evaluate(WAIT_FOR_MATHJAX)


def _has_math_in_source(docname):
    return 'class="math' in (HTML / f"{docname}.html").read_text(encoding="utf-8")


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("docname", DOCNAMES)
def test_page_renders_offline(page, site, docname):
    mathjax = _open(page, f"{site}/{docname}.html")

    math = page.evaluate(MATH_REPORT)
    if _has_math_in_source(docname):
        assert mathjax["loaded"], f"{docname}: the page has math but MathJax did not load"
        assert mathjax["version"].startswith("3."), mathjax
        assert math["count"] > 0 and math["containers"] >= math["count"]
        assert not math["untypeset"], f"{docname}: math not typeset: {math['untypeset'][:5]}"
        assert not math["errors"], f"{docname}: MathJax errors: {math['errors'][:5]}"
        assert not math["undefinedMacros"], f"{docname}: undefined macros: {math['undefinedMacros']}"
    for what, pattern in RAW_MATH:
        hit = pattern.search(math["text"])
        assert hit is None, (f"{docname}: raw math delimiter {what!r} left in the text: "
                             f"...{math['text'][max(0, hit.start() - 60):hit.end() + 60]}...")

    images = page.evaluate(BROKEN_IMAGES)
    assert not images["broken"], f"{docname}: images that did not load: {images['broken']}"

    errors = page.evaluate(OUTPUT_ERRORS)
    assert not errors, f"{docname}: cell outputs show errors: {errors}"

    # _static/code-cells.css and the 88-character lines of tests/test_book.py: nothing scrolls
    overflowing = page.evaluate(CODE_OVERFLOW)
    assert not overflowing, f"{docname}: code cells that scroll horizontally: {overflowing}"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{docname.replace('/', '__')}.png"), full_page=True)


def _chapters_with_download_links():
    """Pages whose source links a file for download with the {download} role."""
    return [d for d in DOCNAMES
            if "{download}`" in (ROOT / f"{d}.md").read_text(encoding="utf-8")]


@pytest.mark.parametrize("docname", _chapters_with_download_links())
def test_exercise_links_download_the_student_notebooks(page, site, docname):
    page.route("**/_mathjax/**", lambda route: route.fulfill(body="", content_type="text/javascript"))
    page.goto(f"{site}/{docname}.html", wait_until="domcontentloaded")
    links = page.evaluate(DOWNLOAD_LINKS)
    assert links, f"{docname}: no download link"
    assert any(link["inExercises"] for link in links), f"{docname}: none in the Exercises section"
    for index, link in enumerate(links):
        name = link["href"].rsplit("/", 1)[-1]
        assert "solutions" not in link["href"], link
        assert name.endswith(".ipynb") and any((ROOT / "exercises").glob(f"*/{name}")), link
        with page.expect_download() as info:
            page.locator("a.reference.download").nth(index).click()
        download = info.value
        assert download.failure() is None, f"{docname}: {link['href']}: {download.failure()}"
        assert download.suggested_filename == name
        notebook = json.loads(Path(download.path()).read_text(encoding="utf-8"))
        assert notebook["nbformat"] == 4 and notebook["cells"], f"{name} is not a notebook"
        student = next((ROOT / "exercises").glob(f"*/{name}"))
        assert Path(download.path()).read_bytes() == student.read_bytes(), (
            f"{docname}: {name} is not the student notebook {student.relative_to(ROOT)}")


def test_next_and_previous_links_walk_the_whole_book(page, site):
    # Typesetting is not under test here: serve an empty MathJax so that each step is quick.
    page.route("**/_mathjax/**", lambda route: route.fulfill(body="", content_type="text/javascript"))
    page.goto(f"{site}/{DOCNAMES[0]}.html", wait_until="domcontentloaded")
    assert page.locator("a.left-prev").count() == 0, "the first page has a 'previous' link"
    for current, following in zip(DOCNAMES, DOCNAMES[1:]):
        page.click("a.right-next")
        page.wait_for_url(f"{site}/{following}.html", wait_until="domcontentloaded")
        assert page.locator("article.bd-article h1").first.is_visible(), following
    assert page.locator("a.right-next").count() == 0, "the last page has a 'next' link"
    for current, previous in zip(DOCNAMES[::-1], DOCNAMES[-2::-1]):
        page.click("a.left-prev")
        page.wait_for_url(f"{site}/{previous}.html", wait_until="domcontentloaded")


def test_index_redirects_to_the_introduction(page, site):
    page.goto(f"{site}/index.html")
    page.wait_for_url(f"{site}/{DOCNAMES[0]}.html")


def test_search_finds_a_chapter(page, site):
    page.goto(f"{site}/search.html?q=importance", wait_until="load")
    page.wait_for_selector("ul.search li")
    hrefs = page.eval_on_selector_all("ul.search li a", "links => links.map(a => a.href)")
    assert any("book/importance_sampling.html" in href for href in hrefs), hrefs


def test_search_reports_no_match_for_a_missing_word(page, site):
    page.goto(f"{site}/search.html?q=qzxjvwk", wait_until="load")
    summary = page.wait_for_selector("p.search-summary")
    page.wait_for_function(
        "() => /did not match|no results|0 page/i.test("
        "document.querySelector('p.search-summary').textContent)")
    assert page.locator("ul.search li").count() == 0, summary.text_content()


def test_math_renders_when_opened_from_the_file_system(page):
    # A newcomer opens _build/html/index.html directly: MathJax must load through file:// too.
    docname = next(d for d in DOCNAMES if _has_math_in_source(d))
    mathjax = _open(page, (HTML / f"{docname}.html").as_uri())
    assert mathjax["loaded"]
    report = page.evaluate(MATH_REPORT)
    assert report["count"] > 0 and not report["untypeset"]
