"""nbgrader configuration of the course (read by every nbgrader command run from this directory).

Instructor sources live in ``solutions/``; ``python -m grading release`` generates the student
versions into ``exercises/``. Everything produced while grading -- submissions, autograded copies,
feedback and the SQLite gradebook -- lives in the git-ignored ``gradebook/`` folder.

Grading verdicts are NOT computed in the student's kernel: see grading/README.md. The kernel still
runs (for outputs and manually graded parts), sandboxed and with a per-cell timeout; the
``JudgeAnswers`` preprocessor then grades every autograded part from the submitted cell sources
in separate sandboxed processes and overwrites the test cells' outputs with its verdicts.

nbgrader runs the ``alembic`` executable when it creates a gradebook: keep the venv's ``bin`` first
on PATH (the Makefile and ``python -m grading`` do).
"""
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput,
                                    DeduplicateIds, IgnorePattern, LimitOutput, OverwriteCells,
                                    OverwriteKernelspec, SaveAutoGrades)

from grading.preprocessors import (HideHiddenTests, JudgeAnswers, NeutralizeHTML, ResilientExecute,
                                  RestoreMetadata, StartJudging)

HERE = os.path.dirname(os.path.abspath(__file__))
GRADEBOOK = os.path.join(HERE, "gradebook")

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.root = HERE
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "gradebook/submitted"
c.CourseDirectory.autograded_directory = "gradebook/autograded"
c.CourseDirectory.feedback_directory = "gradebook/feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(GRADEBOOK, "gradebook.db")
# never released and never copied next to an autograded notebook: test data of the exercises
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                            "*.variants.yml"]

# Kernel execution: per-cell timeout; a hung or dead kernel stops that notebook only.
c.Execute.timeout = 30
c.Execute.shutdown_kernel = "immediate"
c.Execute.iopub_timeout = 4
c.ResilientExecute.total_timeout = 300
c.OverwriteCells.add_missing_cells = True

# What student code (kernel and judge harness) must never read. StartJudging is configured
# through its parent class JudgeAnswers.
FORBIDDEN = [os.path.join(HERE, p) for p in ("solutions", "gradebook", ".git", "tests")]
c.ResilientExecute.forbidden_paths = FORBIDDEN
c.JudgeAnswers.forbidden_paths = FORBIDDEN
c.JudgeAnswers.cell_timeout = 30
c.JudgeAnswers.total_timeout = 300
c.JudgeAnswers.memory_mb = 2048

# HideHiddenTests runs in the sanitize stage: its output (gradebook/autograded), which the autograde
# stage reads back, must never hold the hidden tests, even when the grader is killed before the
# autograde stage rewrites it. The judge reads the CHECK declarations from the gradebook.
c.Autograde.sanitize_preprocessors = [
    RestoreMetadata, ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells,
    HideHiddenTests, CheckCellMetadata,
]
c.Autograde.autograde_preprocessors = [
    StartJudging, ResilientExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
    NeutralizeHTML, JudgeAnswers, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
]
