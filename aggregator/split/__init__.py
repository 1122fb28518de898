"""Cross-backend split execution: a graph whose collections live on different backends runs as batch jobs
("parts", one per load_collection that the primary backend cannot load) on their backends, and the rest
of the graph on the primary backend reads the parts' signed results with load_stac.

- graphs.py: pure: the part graphs and the primary graph (``split_graphs``).
- parts.py: the part-job runner (create, start, wait, signed results URL, delete), shared by POST
  /result and, later, batch jobs with split ids (``s1-...``).
- sync.py: POST /result of a split graph.
"""

from aggregator.split.errors import SplitPartFailed, SplitPartTimeout
from aggregator.split.graphs import PART_FORMAT, PartGraph, SplitGraphs, split_graphs

__all__ = ["PART_FORMAT", "PartGraph", "SplitGraphs", "SplitPartFailed", "SplitPartTimeout", "split_graphs"]
