"""Pure placement policy: floors and their sources (floors.py, policy.py), a pod's role
and its patch (roles.py), moves and deletion costs (moves.py), drain pacing (pacing.py),
whether a node has room (room.py), floor holds (holds.py) and the certificate plan
(certs.py). No I/O: every function takes values or reads the index, and is tested
table-style.

It may import `core`, `api` (kinds as data) and `cluster`.
"""
