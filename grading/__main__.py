"""``python -m grading``: the instructor commands (see grading/cli.py)."""
import sys

from .cli import main

sys.exit(main())
