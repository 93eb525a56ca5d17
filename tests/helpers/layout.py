"""Where a namespace's pods are by role and capacity, for the autoscaled tests and demo:
floor pods on on-demand, spot pods on spot, printed as a line whenever it changes."""

from __future__ import annotations

from tests.cluster.karpenter import capacity_counts
from tests.helpers.sampling import ReadySampler, Sample

PLACES = ("floor/on-demand", "floor/other", "spot/spot", "spot/other", "pending", "unready")


def layout(sample: Sample, app: str) -> dict[str, int]:
    """Where the app's live pods are, by role and capacity (a pod of no role counts as spot)."""
    out = dict.fromkeys(PLACES, 0)
    for p in sample.pods[app]:
        if p.terminating:
            continue
        if not p.node:
            out["pending"] += 1
            continue
        out["unready"] += not p.ready
        if p.role == "floor":
            out["floor/on-demand" if p.capacity == "on-demand" else "floor/other"] += 1
        else:
            out["spot/spot" if p.capacity == "spot" else "spot/other"] += 1
    return out


def settled(sample: Sample, replicas: dict[str, int], floors: dict[str, int]) -> bool:
    """Every replica Ready, exactly k floor pods on on-demand and the rest on spot."""
    for app, r in replicas.items():
        where = layout(sample, app)
        if (where["pending"] or where["unready"] or where["floor/other"] or where["spot/other"]
                or where["floor/on-demand"] != floors[app] or where["spot/spot"] != r - floors[app]):
            return False
    return True


class Watch:
    """Samples the namespace twice a second; prints a line whenever nodes or placements
    change, and keeps every floor pod it ever saw on a spot node."""

    def __init__(self, api, ns: str, replicas: dict[str, int], floors: dict[str, int]):
        self.replicas, self.floors = replicas, floors
        self.apps = list(floors)
        self.floor_on_spot: list[str] = []
        self.last = ""
        self.sampler = ReadySampler(api, ns, self.apps, 0.5, on_sample=self.seen)

    def seen(self, sample: Sample) -> None:
        for app in self.apps:
            self.floor_on_spot += [f"{sample.t:.1f}s {p.pod} on {p.node}" for p in sample.pods[app]
                                   if p.role == "floor" and p.capacity == "spot" and not p.terminating]
        nodes = capacity_counts(list(sample.nodes.values()))
        line = f"nodes {dict(sorted(nodes.items()))} | " + " | ".join(
            f"{app} " + " ".join(f"{k}={v}" for k, v in layout(sample, app).items() if v) for app in self.apps)
        if line != self.last:
            print(f"    [{sample.t:6.1f}s] {line}", flush=True)
            self.last = line

    def until(self, done, timeout: float) -> float | None:
        return self.sampler.sample_until(done, timeout)

    def until_settled(self, timeout: float) -> float | None:
        return self.until(lambda s: settled(s, self.replicas, self.floors), timeout)
