"""Make ``stacklib`` importable as stackctl.py imports it: from the stack/ folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
