"""The leader's loops, reading the same index as the extender and acting through one
evictor: drain (drain.py), rebalance (rebalance.py) and deletion cost (deletion_cost.py).
Each is a small class with a name, a period and one `once()`; `Controller` runs them."""

from .run import Controller

__all__ = ["Controller"]
