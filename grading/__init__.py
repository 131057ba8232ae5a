"""Grading machinery of the course: nbgrader configuration, an out-of-kernel judge, the instructor CLI.

Nothing in this package knows a reference answer. References live only in the hidden tests of the
notebooks under ``solutions/``; this package reads them from nbgrader's gradebook at grading time.

Modules, one idea each:

``spec``          parse the ``CHECK = {...}`` declaration of a test cell (never executes it)
``sandbox``       resource limits and a Landlock filesystem/signal/network sandbox for untrusted code
``runner``        run a sandboxed child process and read its private result channel with time limits
``harness``       the script run on student code: executes the cells, serialises the answers to JSON
``inputs``        hidden test inputs for function answers, built from plain data in the sandbox
``exprtree``      rebuild a sympy expression from the harness's JSON tree with a whitelist of classes
``compare``       symbolic answers: numeric probes honouring assumptions, then exact simplification
``checks``        numbers, arrays and functions on hidden cases (tolerances, seeded statistics)
``judge``         the clean, time-limited process that turns raw answers into verdicts
``program``       turn a notebook into the harness's job (cells, parts, hidden inputs)
``preprocessors`` nbgrader preprocessors: hide hidden tests from the kernel, resilient execution,
                  and ``JudgeAnswers`` which overwrites the test cells' outputs with the verdicts
``kernel``        a kernel manager that starts the student's kernel inside the sandbox
                  (``kernel_launch`` confines the process, then execs the kernel)
``authoring``     helpers to write exercise notebooks with correct nbgrader metadata
``course``        the course directory, its nbgrader configuration and converters
``cli``           ``python -m grading release|autograde|feedback|export``

How to add an exercise, and the instructor workflow: grading/README.md.
"""
