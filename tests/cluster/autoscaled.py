"""A cluster whose every worker node Karpenter provisions: a local control plane with no
nodes of its own, Karpenter's KWOK provider, and spot-extender as the pods' admission
webhook with kube-scheduler left as it ships (the managed-cluster case). The autoscaled
end-to-end tests, `make demo-autoscaled` and the availability benchmark's autoscaled
scenario all run on it.

extender_only() switches to the way spot-extender worked before the webhook: kube-scheduler
calls it, and no webhook writes roles, so Karpenter sees pods with nothing in their spec.
"""

from __future__ import annotations

from pathlib import Path

from tests.cluster.controlplane import (
    ControlPlane,
    ExtenderOptions,
    ExtenderProcess,
    kubectl,
    make_client_cert,
    make_tls,
    service_account_kubeconfig,
)
from tests.cluster.karpenter import Karpenter, node_pool
from tests.helpers import kube
from tests.helpers.webhook import webhook_configuration

WEBHOOK_NAME = "spot-extender"


class AutoscaledCluster:
    """start() brings everything up (the control plane's logs, Karpenter's among them, are
    printed if that fails); cleanup() tears it all down."""

    def __init__(self, extender_flags: tuple = (), log=print, pod_ready_ms: int = 0,
                 node_pools: list[dict] | None = None, consolidate_after: str = "5s", spot_extender: bool = True):
        """spot_extender=False: Karpenter and the control plane alone, for approaches without it."""
        self.log = log
        self.cluster = ControlPlane(log=log, pod_ready_ms=pod_ready_ms)
        self.extender_flags = extender_flags
        self.node_pools = node_pools or [node_pool(consolidate_after=consolidate_after)]
        self.extender: ExtenderProcess | None = None
        self.karpenter: Karpenter | None = None
        self.webhook: dict | None = None
        self.with_spot_extender = spot_extender

    @property
    def api(self):
        return self.cluster.api

    def start(self) -> "AutoscaledCluster":
        cluster = self.cluster
        # HTTPS with a client certificate each way: kube-apiserver calls the webhook and
        # kube-scheduler (in extender_only) the verbs, each presenting one the test CA signed.
        tls = cluster.workdir / "tls"
        self.ca, cert, key = make_tls(tls)
        scheduler_cert, scheduler_key = make_client_cert(tls, "kube-scheduler")
        self.client_cert = make_client_cert(tls, "harness")
        cluster.webhook_client_cert = make_client_cert(tls, "kube-apiserver")
        cluster.extender = ExtenderOptions(port=cluster.extender.port, https=True, ca_file=str(self.ca),
                                           client_cert=str(scheduler_cert), client_key=str(scheduler_key))
        cluster.use_extender = False
        try:
            cluster.start()
            for path in ("k8s/base", "k8s/overlays/surge"):  # surges allowed, as a user who wants them
                applied = kubectl(cluster, "apply", "-k", path)
                if applied.returncode:
                    raise RuntimeError(f"kubectl apply -k {path} failed: {applied.stderr}")
            # spot-extender runs here as a local process: its own Deployment's pods would make
            # Karpenter buy nodes for them.
            cluster.api.merge_patch("/apis/apps/v1/namespaces/kube-system/deployments/spot-extender",
                                    {"spec": {"replicas": 0}})
            if not self.with_spot_extender:
                self.karpenter = Karpenter(cluster, self.node_pools).install().start()
                return self
            kubeconfig = service_account_kubeconfig(cluster, "kube-system", "spot-extender")
            flags = (*self.extender_flags, f"--tls-cert-file={cert}", f"--tls-key-file={key}",
                     f"--tls-client-ca-file={self.ca}")
            self.extender = ExtenderProcess(cluster, *flags, kubeconfig=kubeconfig, ca_file=self.ca,
                                            client_cert=self.client_cert).start()
            self.register_webhook()
            self.karpenter = Karpenter(cluster, self.node_pools).install().start()
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):
                self.log(cluster.dump_logs())
            cluster.cleanup()
            raise
        return self

    def register_webhook(self) -> None:
        if self.webhook is None:
            self.webhook = kube.create(self.api, webhook_configuration(self.extender.url, Path(self.ca), WEBHOOK_NAME))

    def unregister_webhook(self) -> None:
        if self.webhook is not None:
            kube.delete(self.api, "MutatingWebhookConfiguration", WEBHOOK_NAME)
            self.webhook = None

    def webhook_only(self) -> None:
        """Roles in the pod spec, kube-scheduler without the extender."""
        self.register_webhook()
        self.cluster.start_scheduler(use_extender=False)

    def extender_only(self) -> None:
        """kube-scheduler calls the extender; no webhook."""
        self.unregister_webhook()
        self.cluster.start_scheduler(use_extender=True)

    def cleanup(self) -> None:
        self.cluster.cleanup()

    def __enter__(self) -> "AutoscaledCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()
