"""Everything that answers HTTP: the extender verbs (wire.py owns their format,
extender.py answers them, candidates.py caches candidate views), the mutating webhook
(admission.py owns AdmissionReview, webhook.py decides), /debug/workloads and the fleet
metrics (status.py, fleet.py, status_table.py), /metrics sharing (scrapes.py), TLS and
the self-managed certificates (tls.py, cert_rotation.py), and the aiohttp routes
(server.py).

It may import `core`, `api`, `cluster` and `decisions`; never `controller`.
"""
