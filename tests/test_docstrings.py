"""Every public function, class and method of vi_course has a docstring naming the chapter it
implements (DESIGN.md: "Every public function has a numpy-style docstring that names the chapter
and equation it implements")."""
import importlib
import inspect
import pkgutil

import pytest

import vi_course


def _public_objects():
    found = []
    for info in pkgutil.walk_packages(vi_course.__path__, "vi_course."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                found.append((f"{module.__name__}.{name}", obj))
            elif inspect.isclass(obj):
                found.append((f"{module.__name__}.{name}", obj))
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    func = member.fget if isinstance(member, property) else member
                    func = getattr(func, "__func__", func)          # staticmethod, classmethod
                    if inspect.isfunction(func):
                        found.append((f"{module.__name__}.{name}.{attr}", func))
    return found


PUBLIC = _public_objects()


def test_the_walk_finds_the_api():
    names = {name for name, _ in PUBLIC}
    assert len(PUBLIC) > 150
    assert {"vi_course.advi.advi", "vi_course.cavi.cavi_gmm", "vi_course.elbo.elbo",
            "vi_course.models.gaussian.ConjugateGaussian.posterior"} <= names


@pytest.mark.parametrize("name, obj", PUBLIC, ids=[name for name, _ in PUBLIC])
def test_docstring_names_its_chapter(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{name} has no docstring"
    if inspect.isclass(obj) and issubclass(obj, Exception):
        return
    own = obj.__doc__ or ""
    assert "chapter" in own.lower(), f"{name}: the docstring does not name its chapter"
