"""Pods and Nodes the size kube-apiserver lists them, for list-and-sync figures.

The helpers in tests/helpers/objects.py build the fields spot-extender reads and little
else. A real Deployment pod is about 5 KB of JSON (managedFields, a container with env,
probes and mounts, the service-account volume, status with five conditions) and a Node
about 4 KB before its image list; what the extender decodes and throws away counts in a
list-and-sync, so these add it. The shapes follow `kubectl get -o json` of a kubeadm
cluster's pods and nodes.
"""

from __future__ import annotations

import copy

STAMP = "2026-11-30T10:00:00Z"


def _managed(manager: str, operation: str, fields: dict, subresource: str = "") -> dict:
    entry = {"manager": manager, "operation": operation, "apiVersion": "v1", "time": STAMP,
             "fieldsType": "FieldsV1", "fieldsV1": fields}
    if subresource:
        entry["subresource"] = subresource
    return entry


_POD_SPEC_FIELDS = {
    "f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                   "f:ownerReferences": {".": {}, 'k:{"uid":"owner"}': {}}},
    "f:spec": {"f:containers": {'k:{"name":"app"}': {
        ".": {}, "f:env": {".": {}, 'k:{"name":"LOG_LEVEL"}': {".": {}, "f:name": {}, "f:value": {}}},
        "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {}, "f:readinessProbe": {},
        "f:resources": {".": {}, "f:limits": {}, "f:requests": {}}, "f:terminationMessagePath": {},
        "f:terminationMessagePolicy": {}}},
        "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {}, "f:schedulerName": {},
        "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}},
}
_POD_STATUS_FIELDS = {"f:status": {"f:conditions": {'k:{"type":"Ready"}': {
    ".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}},
    "f:containerStatuses": {}, "f:hostIP": {}, "f:hostIPs": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {},
    "f:startTime": {}}}


def full_pod(pod: dict, index: int) -> dict:
    """`pod` (from tests/helpers/objects.pod) with everything else a listed pod carries."""
    pod = copy.deepcopy(pod)
    meta, spec, status = pod["metadata"], pod["spec"], pod["status"]
    meta.setdefault("generateName", meta["name"].rsplit("-", 1)[0] + "-")
    meta.setdefault("creationTimestamp", STAMP)
    meta["managedFields"] = [_managed("kube-controller-manager", "Update", _POD_SPEC_FIELDS),
                             _managed("kubelet", "Update", _POD_STATUS_FIELDS, "status")]
    container = spec["containers"][0]
    container.update({
        "image": "registry.example.com/team/app:v1.42.7", "imagePullPolicy": "IfNotPresent",
        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_NAME", "valueFrom": {
            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http", "scheme": "HTTP"}, "periodSeconds": 10,
                           "failureThreshold": 3, "successThreshold": 1, "timeoutSeconds": 1},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                          "name": f"kube-api-access-{index % 99999:05d}", "readOnly": True}],
    })
    spec.update({
        "dnsPolicy": "ClusterFirst", "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0, "restartPolicy": "Always", "schedulerName": "default-scheduler", "securityContext": {},
        "serviceAccount": "default", "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
        "tolerations": [{"effect": "NoExecute", "key": f"node.kubernetes.io/{t}", "operator": "Exists",
                         "tolerationSeconds": 300} for t in ("not-ready", "unreachable")],
        "volumes": [{"name": f"kube-api-access-{index % 99999:05d}", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                        "path": "namespace"}]}}]}}],
    })
    ip = f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"
    if spec.get("nodeName"):
        ready = next((c for c in status.get("conditions", ()) if c.get("type") == "Ready"), {"status": "True"})
        status.update({
            "conditions": [{"type": t, "status": ready["status"] if t in ("Ready", "ContainersReady") else "True",
                            "lastProbeTime": None, "lastTransitionTime": STAMP}
                           for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                     "PodScheduled")],
            "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}], "podIP": ip, "podIPs": [{"ip": ip}],
            "qosClass": "Burstable", "startTime": STAMP,
            "containerStatuses": [{"name": "app", "ready": ready["status"] == "True", "restartCount": 0,
                                   "started": True, "image": container["image"],
                                   "imageID": "registry.example.com/team/app@sha256:" + "ab" * 32,
                                   "containerID": f"containerd://{index:064x}",
                                   "state": {"running": {"startedAt": STAMP}}, "lastState": {}}],
        })
    return pod


def full_node(node: dict, images: int = 20) -> dict:
    """`node` (from tests/helpers/objects.node) with the status a kubelet reports."""
    node = copy.deepcopy(node)
    meta, status = node["metadata"], node.setdefault("status", {})
    meta.setdefault("creationTimestamp", STAMP)
    meta.setdefault("annotations", {}).update({
        "node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock"})
    meta["labels"].update({"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                           "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
                           "kubernetes.io/hostname": meta["name"]})
    status.setdefault("capacity", {"cpu": "4", "memory": "16Gi", "pods": "110"})
    status.setdefault("allocatable", dict(status["capacity"]))
    status.update({
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": meta["name"]}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"architecture": "amd64", "containerRuntimeVersion": "containerd://2.1.4",
                     "kernelVersion": "6.8.0-1021-aws", "kubeProxyVersion": "", "kubeletVersion": "v1.36.3",
                     "operatingSystem": "linux", "osImage": "Ubuntu 24.04.1 LTS", "bootID": meta["name"],
                     "machineID": meta["name"], "systemUUID": meta["name"]},
        "images": [{"names": [f"registry.example.com/team/image-{i}@sha256:" + f"{i:02x}" * 32,
                              f"registry.example.com/team/image-{i}:v1.{i}"], "sizeBytes": 10_000_000 + i}
                   for i in range(images)],
    })
    conditions = status.setdefault("conditions", [{"type": "Ready", "status": "True"}])
    for condition in conditions:
        condition.update({"lastHeartbeatTime": STAMP, "lastTransitionTime": STAMP, "reason": "KubeletReady",
                          "message": "kubelet is posting ready status"})
    for kind in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        conditions.append({"type": kind, "status": "False", "lastHeartbeatTime": STAMP, "lastTransitionTime": STAMP,
                           "reason": f"KubeletHasNo{kind}", "message": f"kubelet has no {kind}"})
    return node
