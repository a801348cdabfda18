import pathlib
import sys

# The runner module sits beside the tests.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from hypothesis import settings

# No example database on disk (it would land in the work tree).
settings.register_profile("delimiter", database=None)
settings.load_profile("delimiter")
