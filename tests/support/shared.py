"""Where the shared test material lives: ``../shared`` beside the checkout.

``SLUIS_SHARED`` points elsewhere (the mutant runner tests a scratch copy of the tree, which
has no ``shared/`` beside it). Tests read the vectors from here and never copy them.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SLUIS_SHARED") or REPO.parent / "shared")
VECTORS = SHARED / "vectors"
