"""`python -m backend.demo DEST`: generate the demo catalog into DEST (if missing or outdated) and print
the path of its catalog.json. `openeo-aggregator demo` runs it once for the backends it starts."""

import logging
import sys
from pathlib import Path

from backend.demo import ensure_demo_catalog

if len(sys.argv) != 2:
    sys.exit("usage: python -m backend.demo DEST")
logging.basicConfig(level=logging.INFO, format="%(message)s")
print(ensure_demo_catalog(Path(sys.argv[1])))
