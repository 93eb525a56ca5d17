"""Moved to tests/helpers/objects.py, which builds the objects of every kind of test.

Kept only until tests/unit imports tests.helpers.objects; nothing else uses this name.
"""

from tests.helpers.objects import deployment, node, pdb, pod, replicaset, statefulset

__all__ = ["deployment", "node", "pdb", "pod", "replicaset", "statefulset"]
