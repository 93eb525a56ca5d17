"""Every kind spot-extender watches, as data: where it is served, whether it may be absent,
and for workload kinds how their pods reach them and which revision is counted.

Adding a workload kind whose pods are managed by ReplicaSets (as Deployments and Argo
Rollouts are) is one entry here plus its RBAC rule in k8s/base/rbac.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.vocabulary import DEPLOYMENT_REVISION_ANNOTATION, ROLLOUT_REVISION_ANNOTATION
from .objects import Resource


@dataclass(frozen=True)
class Kind:
    name: str  # the API kind, as owner references name it
    resource: Resource
    # Served by a CRD that may not be installed: then it is skipped, never waited for.
    optional: bool = False
    # Workload kinds only ------------------------------------------------------------
    workload: bool = False
    counts_pods: bool = False  # pods name it as their controller; they are counted per object
    owns_replicasets: bool = False  # its pods belong to ReplicaSets it controls, one per revision
    revision_annotation: str = ""  # on those ReplicaSets: the highest revision is the one counted
    deletion_cost: bool = False  # scale-downs honour controller.kubernetes.io/pod-deletion-cost


NODE = "Node"
POD = "Pod"
PDB = "PodDisruptionBudget"
DEPLOYMENT = "Deployment"
STATEFULSET = "StatefulSet"
REPLICASET = "ReplicaSet"
ROLLOUT = "Rollout"
PV = "PersistentVolume"
PVC = "PersistentVolumeClaim"

# Nodes first and Pods last, so the first pods listed find their nodes and owners.
WATCHED: tuple[Kind, ...] = (
    Kind(NODE, Resource("", "v1", "nodes")),
    Kind(DEPLOYMENT, Resource("apps", "v1", "deployments"), workload=True, owns_replicasets=True,
         revision_annotation=DEPLOYMENT_REVISION_ANNOTATION, deletion_cost=True),
    Kind(ROLLOUT, Resource("argoproj.io", "v1alpha1", "rollouts"), optional=True, workload=True,
         owns_replicasets=True, revision_annotation=ROLLOUT_REVISION_ANNOTATION, deletion_cost=True),
    Kind(STATEFULSET, Resource("apps", "v1", "statefulsets"), workload=True, counts_pods=True),
    # A ReplicaSet is a workload of its own only when no kind above controls it.
    Kind(REPLICASET, Resource("apps", "v1", "replicasets"), workload=True, counts_pods=True),
    Kind(PDB, Resource("policy", "v1", "poddisruptionbudgets")),
    # Where a pod's volumes can be attached: a zonal volume pins its pod to the zone.
    Kind(PV, Resource("", "v1", "persistentvolumes")),
    Kind(PVC, Resource("", "v1", "persistentvolumeclaims")),
    Kind(POD, Resource("", "v1", "pods")),
)

BY_NAME: dict[str, Kind] = {k.name: k for k in WATCHED}
# Owner references name an API group and a kind: OpenKruise's apps.kruise.io StatefulSet is
# not an apps/v1 one, and its pods must not be counted as if it were.
BY_GROUP_AND_NAME: dict[tuple[str, str], Kind] = {(k.resource.group, k.name): k for k in WATCHED}
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in WATCHED)
WORKLOAD_KINDS: tuple[str, ...] = tuple(k.name for k in WATCHED if k.workload)


def watched(api_group: str, name: str) -> Kind | None:
    """The watched kind an owner reference names, by its apiVersion's group and its kind."""
    return BY_GROUP_AND_NAME.get((api_group, name))
