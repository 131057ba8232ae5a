"""The course on disk: its root, nbgrader configuration, assignments and converters.

Every nbgrader call of the CLI goes through here so that the configuration file is always
``<root>/nbgrader_config.py`` and the venv's ``bin`` (for ``alembic``) is first on PATH.
"""
from __future__ import annotations

import logging
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prepare_environment() -> None:
    """Put the interpreter's bin directory first on PATH (nbgrader runs ``alembic``)."""
    venv_bin = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if not path.startswith(venv_bin + os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + path


def load_config(root: str = ROOT, overrides: dict | None = None):
    """The traitlets Config of ``<root>/nbgrader_config.py`` plus ``{"Section.key": value}`` overrides."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=root).load_config()
    extra = Config()
    for dotted, value in (overrides or {}).items():
        section, key = dotted.rsplit(".", 1)
        extra[section][key] = value
    config.merge(extra)
    db_url = config.CourseDirectory.get("db_url", "")
    if db_url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(db_url[len("sqlite:///"):]) or ".", exist_ok=True)
    return config


def assignments(root: str = ROOT, source: str = "solutions") -> list[str]:
    """Assignment folders of ``solutions/`` (those holding notebooks; ``_``/``.`` prefixes skipped)."""
    base = os.path.join(root, source)
    if not os.path.isdir(base):
        return []
    return sorted(d for d in os.listdir(base)
                  if not d.startswith(("_", ".")) and os.path.isdir(os.path.join(base, d))
                  and any(f.endswith(".ipynb") for f in os.listdir(os.path.join(base, d))))


def converter(cls, config, **coursedir_settings):
    """An nbgrader converter (GenerateAssignment, Autograde, ...) bound to this course."""
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    for key, value in coursedir_settings.items():
        setattr(coursedir, key, value)
    app = cls(coursedir=coursedir, config=config)
    return app


def quiet_logs(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.ERROR
    for name in ("traitlets", "NbGraderAPI", "nbgrader"):
        logging.getLogger(name).setLevel(level)
