"""Checks of what book/intro.md displays and claims (the introduction of the book).

The one displayed identity, Bayes' rule with the evidence as an integral (eq-intro-bayes), is checked
by quadrature on the running example, and the chapter's code cells are executed in-process so that
what the prose says about their results (shapes, the exact posterior) is checked too. The list of
chapters in "What the course covers" must follow _toc.yml, so that it cannot announce a chapter
as missing or planned once it exists.
"""
from __future__ import annotations

import functools
import io
import re
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import integrate, stats

import vi_course as vc

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "book" / "intro.md"


@functools.lru_cache(maxsize=None)
def chapter_namespace() -> dict:
    """Run the chapter's code cells and return the variables they define, with the value of the
    last expression of every cell (what the page displays) under ``_displayed``."""
    import ast

    import jupytext

    namespace: dict = {"_displayed": []}
    with redirect_stdout(io.StringIO()):
        for cell in jupytext.read(CHAPTER).cells:
            if cell.cell_type != "code":
                continue
            tree = ast.parse(cell.source)
            last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            body = tree.body[:-1] if last is not None else tree.body
            exec(compile(ast.Module(body, []), f"{CHAPTER.name}[cell]", "exec"), namespace)  # noqa: S102
            if last is not None:
                value = eval(compile(ast.Expression(last.value), CHAPTER.name, "eval"), namespace)  # noqa: S307
                if value is not None:                    # print(...) displays nothing
                    namespace["_displayed"].append(value)
    return namespace


def test_chapter_label_equation_and_exercises():
    text = CHAPTER.read_text(encoding="utf-8")
    assert "(intro)=\n# " in text
    assert "$$ (eq-intro-bayes)" in text and "{eq}`eq-intro-bayes`" in text
    assert "## Exercises" in text


def test_course_outline_lists_every_chapter_in_reading_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    chapters = [entry["file"].split("/")[-1] for part in toc["parts"]
                if part["caption"] != "Appendices" for entry in part["chapters"]]
    text = CHAPTER.read_text(encoding="utf-8")
    outline = text.split("## What the course covers", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\d+\. \{doc\}`(\w+)`", outline, re.M)
    assert listed == chapters, f"the outline lists {listed}, _toc.yml has {chapters}"
    numbers = [int(n) for n in re.findall(r"^(\d+)\. \{doc\}", outline, re.M)]
    assert numbers == list(range(1, len(chapters) + 1))
    assert not re.search(r"will follow|planned|to come", outline)


@pytest.mark.parametrize("seed, n, prior_var, noise_var", [
    (0, 20, 1.0, 1.0),     # the chapter's running example
    (3, 5, 4.0, 0.5),
    (7, 1, 0.3, 2.0),
])
def test_bayes_rule_and_the_evidence_integral(seed, n, prior_var, noise_var):
    # eq-intro-bayes: p(D) = int p(D | z) p(z) dz by quadrature, with the prior and the likelihood
    # from scipy, against the library's closed form; and p(D | z) p(z) / p(D) is the exact posterior
    x = np.random.default_rng(seed).normal(1.5, 1.0, size=n)
    model = vc.models.ConjugateGaussian(x, prior_var=prior_var, noise_var=noise_var)

    def prior_times_likelihood(z):
        prior = stats.norm(0.0, np.sqrt(prior_var)).pdf(z)
        return prior * np.prod(stats.norm(z, np.sqrt(noise_var)).pdf(x))

    mean, cov = model.posterior()
    sd = np.sqrt(cov[0, 0])
    centre = mean[0]
    evidence, _ = integrate.quad(prior_times_likelihood, centre - 40 * sd, centre + 40 * sd,
                                 points=[centre], limit=200, epsabs=0, epsrel=1e-12)
    assert np.log(evidence) == pytest.approx(model.log_evidence(), abs=1e-9)
    for z in centre + sd * np.array([-2.0, -0.3, 0.0, 1.1, 2.5]):
        posterior = prior_times_likelihood(z) / evidence
        assert posterior == pytest.approx(stats.norm(centre, sd).pdf(z), rel=1e-8)


def test_chapter_code_claims():
    ns = chapter_namespace()
    shape, same = ns["_displayed"]
    assert shape == (5,)                       # "one log density per sample"
    assert same is True or same == np.True_    # "reproduces the exact posterior density"
    assert ns["x"].shape == (20,) and ns["model"].dim == 1
