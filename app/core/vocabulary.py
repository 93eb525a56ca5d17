"""The words spot-extender shares with the cluster, defined once: node classes and pod
roles, every label, annotation and taint key it reads or writes, and the providers'
conventions it ships as defaults (capacity labels, going-away taints and their notices,
spot taints). It imports nothing of ours, so every layer may import it.

Classes and roles are plain strings grouped in namespaces rather than enum.Enum members:
they key dicts and sets filled from label values read off the wire, and an Enum member
hashes by its name, not its value.
"""

from __future__ import annotations

from typing import Final


class Capacity:
    """A node's class, as the capacity labels say (--capacity-labels)."""

    SPOT: Final = "spot"
    ON_DEMAND: Final = "on-demand"
    UNKNOWN: Final = "unknown"  # no capacity label recognised: --unknown-class decides
    CLASSES: Final = (SPOT, ON_DEMAND)


class Role:
    """A pod's role, written into its spec by the webhook."""

    FLOOR: Final = "floor"  # must run on on-demand
    SPOT: Final = "spot"  # prefers (or, in a spot seek, requires) spot
    ROLES: Final = (FLOOR, SPOT)


class Placement:
    """Values of ANNOTATION_PLACEMENT: a workload's own choice of class."""

    AUTO: Final = "auto"
    SPOT: Final = Capacity.SPOT
    ON_DEMAND: Final = Capacity.ON_DEMAND
    ALL: Final = (AUTO, SPOT, ON_DEMAND)


# ---- written by spot-extender ------------------------------------------------------

ROLE_LABEL = "spot-extender.io/role"
# The admission request's uid: lets the replica that admitted a pod see it arrive.
ADMISSION_ANNOTATION = "spot-extender.io/admission"
# A pod (or template) labelled so is created as it is: the MutatingWebhookConfiguration's objectSelector.
OPT_OUT_LABEL = "spot-extender.io/webhook"
OPT_OUT_VALUE = "off"
# On a ReplicaSet or StatefulSet: its floor pods could not be placed in time, so the
# webhook admits its pods as spot until the leader removes it (value: when it was set).
ANNOTATION_FLOOR_FALLBACK = "spot-extender.io/floor-fallback"
# On a ReplicaSet or StatefulSet: a pod of it was moved back to spot while no spot node had
# room, so the webhook makes its spot pods require spot for an autoscaler to add a node
# (value: when it was set; the webhook ignores it after --spot-seek-timeout).
ANNOTATION_SPOT_SEEK = "spot-extender.io/spot-seek"
# On a surge ReplicaSet and its pods (controller/surge.py): the uid of the ReplicaSet it
# stands beside. The leader finds its surges by this label; the webhook makes their pods spot.
SURGE_LABEL = "spot-extender.io/surge-of"
# On a surge ReplicaSet: the workload it serves, "Kind/name" (a label value is too short).
SURGE_FOR_ANNOTATION = "spot-extender.io/surge-for"

# ---- set by users on workloads -------------------------------------------------------

ANNOTATION_FLOOR = "spot-extender.io/on-demand-floor"
ANNOTATION_PLACEMENT = "spot-extender.io/placement"
ANNOTATION_REBALANCE = "spot-extender.io/rebalance"  # "false": the controller leaves the workload alone
ANNOTATION_SURGE = "spot-extender.io/surge"  # "true": a reclaim with notice starts replacements first (--surge)
ANNOTATION_MAX_SURGE = "spot-extender.io/max-surge"  # overrides --max-surge for the workload

# ---- Kubernetes' own -------------------------------------------------------------------

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
MIRROR_POD = "kubernetes.io/config.mirror"
HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
ZONE_LABELS = (ZONE_LABEL, "failure-domain.beta.kubernetes.io/zone")
INSTANCE_TYPE_LABELS = (INSTANCE_TYPE_LABEL, "beta.kubernetes.io/instance-type")
# Labels that name a workload's revision: the spread counts the pod's own revision only.
REVISION_LABELS = ("pod-template-hash", "controller-revision-hash")
# On the ReplicaSets of a Deployment or an Argo Rollout: the highest revision is the one counted.
DEPLOYMENT_REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
ROLLOUT_REVISION_ANNOTATION = "rollout.argoproj.io/revision"
# On every node Karpenter made: an autoscaler adds spot nodes for pods that require spot.
AUTOSCALER_LABEL = "karpenter.sh/nodepool"

# ---- providers' conventions, the settings' defaults ------------------------------------

DEFAULT_CAPACITY_LABELS = (
    "node.kubernetes.io/capacity=spot:spot",
    "node.kubernetes.io/capacity=on-demand:on-demand",
    "karpenter.sh/capacity-type=spot:spot",
    "karpenter.sh/capacity-type=on-demand:on-demand",
    "karpenter.sh/capacity-type=reserved:on-demand",
    "eks.amazonaws.com/capacityType=SPOT:spot",
    "eks.amazonaws.com/capacityType=ON_DEMAND:on-demand",
    "cloud.google.com/gke-spot=true:spot",
    "cloud.google.com/gke-preemptible=true:spot",
    "cloud.google.com/gke-provisioning=spot:spot",
    "cloud.google.com/gke-provisioning=preemptible:spot",
    "cloud.google.com/gke-provisioning=standard:on-demand",
    "kubernetes.azure.com/scalesetpriority=spot:spot",
    "kubernetes.azure.com/scalesetpriority=regular:on-demand",
)

# Taints that announce a node is about to disappear. Cluster Autoscaler's
# PreferNoSchedule DeletionCandidate taint is left out on purpose: it marks a node
# that *might* be scaled down, and acting on it would evict pods for nothing.
DEFAULT_GOING_AWAY_TAINTS = (
    "aws-node-termination-handler/spot-itn",
    "aws-node-termination-handler/rebalance-recommendation",
    "aws-node-termination-handler/scheduled-maintenance",
    "aws-node-termination-handler/asg-lifecycle-termination",
    "karpenter.sh/disrupted",
    "ToBeDeletedByClusterAutoscaler",
    "cloud.google.com/impending-node-termination",
    "remediator.kubernetes.azure.com/unschedulable",
    "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/out-of-service",
    "node.cloudprovider.kubernetes.io/shutdown",
)

# How long each going-away taint gives before the node disappears: the drain is paced
# over it. AWS gives a 2-minute spot interruption notice; GKE and AKS about 30 s.
DEFAULT_DRAIN_NOTICES = (
    "aws-node-termination-handler/spot-itn=120s",
    "cloud.google.com/impending-node-termination=30s",
    "remediator.kubernetes.azure.com/unschedulable=30s",
)

# Spot taints the webhook makes spot pods tolerate. AKS taints every spot pool with its
# label; GKE spot pools, Karpenter NodePools and EKS node groups are often tainted with
# theirs by their users. A toleration of a taint no node has changes nothing.
DEFAULT_SPOT_TOLERATIONS = (
    "kubernetes.azure.com/scalesetpriority=spot:NoSchedule",
    "cloud.google.com/gke-spot=true:NoSchedule",
    "karpenter.sh/capacity-type=spot:NoSchedule",
    "eks.amazonaws.com/capacityType=SPOT:NoSchedule",
)
# What spot pods spread over (ScheduleAnyway): a zone and an instance type make a pool.
DEFAULT_SPREAD_KEYS = (ZONE_LABEL, INSTANCE_TYPE_LABEL)
