"""The one place pyarrow is imported, so its missing type information is handled once.

pyarrow ships no ``py.typed``; until pyproject carries an ``ignore_missing_imports``
override for ``pyarrow.*`` the ignores below silence it (``unused-ignore`` keeps them
harmless once the override lands).
"""

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]
import pyarrow.csv as pacsv  # type: ignore[import-untyped, unused-ignore]
import pyarrow.dataset as ds  # type: ignore[import-untyped, unused-ignore]
import pyarrow.json as pajson  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
from pyarrow import ipc  # type: ignore[import-untyped, unused-ignore]

__all__ = ["ds", "ipc", "pa", "pacsv", "pajson", "pc", "pq"]
