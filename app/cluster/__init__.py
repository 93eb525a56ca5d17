"""What the cluster looks like now: watches (reflector.py) feed one in-memory `Index`
(index.py) made of tables (node_table.py, workload_table.py, tally.py, volumes.py) and
the slim records built from raw objects (records.py, nodes.py, with the pod-spec parsers
constraints.py, needs.py, resources.py). Also the per-replica memory of calls no watch has
confirmed yet (inflight.py, admitted.py, distrust.py).

It may import `core` and `api`. Nothing here decides a placement: that is `decisions`.
"""
