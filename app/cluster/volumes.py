"""PersistentVolumeClaims and the node affinity of the volumes bound to them: a pod whose
claim is bound to a zonal volume can only run where that volume can be attached, and no
move or floor may send it anywhere else. Fed by the PV and PVC watches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .constraints import Constraints, admits, from_pod_spec


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    namespace: str
    name: str
    volume: str  # spec.volumeName, "" until bound


@dataclass(frozen=True, slots=True)
class VolumeRecord:
    name: str
    node_affinity: Constraints | None  # spec.nodeAffinity.required as required terms; None: anywhere


def claim_record(pvc: dict) -> ClaimRecord:
    meta = pvc.get("metadata") or {}
    volume = (pvc.get("spec") or {}).get("volumeName")
    bound = (pvc.get("status") or {}).get("phase") == "Bound"
    return ClaimRecord(meta.get("namespace") or "", meta.get("name") or "",
                       volume if isinstance(volume, str) and bound else "")


def volume_record(pv: dict) -> VolumeRecord:
    meta = pv.get("metadata") or {}
    required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")
    if not isinstance(required, dict):
        return VolumeRecord(meta.get("name") or "", None)
    # A PV's node affinity has a pod's requiredDuringScheduling shape: read it the same way.
    as_pod = from_pod_spec({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}})
    return VolumeRecord(meta.get("name") or "", as_pod)


class VolumeTable:
    def __init__(self) -> None:
        self._claims: dict[tuple[str, str], ClaimRecord] = {}
        self._volumes: dict[str, VolumeRecord] = {}

    def put_claim(self, record: ClaimRecord) -> None:
        self._claims[(record.namespace, record.name)] = record

    def drop_claim(self, namespace: str, name: str) -> None:
        self._claims.pop((namespace, name), None)

    def put_volume(self, record: VolumeRecord) -> None:
        self._volumes[record.name] = record

    def drop_volume(self, name: str) -> None:
        self._volumes.pop(name, None)

    def volume_names(self) -> list[str]:
        return list(self._volumes)

    def claim_keys(self) -> list[tuple[str, str]]:
        return list(self._claims)

    def pins(self, namespace: str, claims: tuple[str, ...]) -> tuple[list[Constraints], str]:
        """(the node affinities of the volumes bound to these claims, why it cannot tell or "").
        A claim not seen, not bound, or bound to a volume not seen cannot be judged."""
        found = []
        for name in claims:
            claim = self._claims.get((namespace, name))
            if claim is None:
                return [], "its PersistentVolumeClaim is not known yet"
            if not claim.volume:
                return [], "its PersistentVolumeClaim is not bound"
            volume = self._volumes.get(claim.volume)
            if volume is None:
                return [], "its PersistentVolume is not known yet"
            if volume.node_affinity is not None:
                found.append(volume.node_affinity)
        return found, ""


def volumes_admit(pins: list[Constraints], name: str, labels: Mapping[str, str]) -> bool:
    """Every pinned volume can be attached on the node (its labels, its name)."""
    return all(admits(pin, name, labels, ()) for pin in pins)
