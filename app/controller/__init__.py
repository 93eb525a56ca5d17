"""The leader's loops, reading the same index as the extender and the webhook, each a
small class with a name, a period and one `once()`: drain (drain.py), rebalance
(rebalance.py), floor fallback (fallback.py) and deletion cost (deletion_cost.py). Every
loop is handed one LoopContext (context.py) and writes to the cluster only through its
Writer (writer.py): evictions, annotations, markers (markers.py) and Events. `Controller`
(run.py) runs them for each term as leader; leader.py elects it over a Lease.

It may import `core`, `api`, `cluster` and `decisions`; never `serving`.
"""

from .run import Controller

__all__ = ["Controller"]
