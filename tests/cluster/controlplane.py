"""A real control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler (calling the extender) and KWOK, from binaries `make cluster-bins` built.

Every component gets ports it picked itself, a log file, and is torn down with its
whole process group, so nothing is left running.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.cluster.api import Api
from tests.helpers.ports import free_port
from tests.helpers.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = Path(__file__).with_name("versions.env")
# A pod annotated so ("30s") takes that long from bound to Ready under KWOK, whatever pod_ready_ms says.
POD_READY_DELAY = "pod-ready.stage.kwok.x-k8s.io/delay"


def pinned(name: str) -> str:
    """A version from versions.env, honouring an override in the environment."""
    return subprocess.run(
        ["bash", "-c", f"source {VERSIONS} && echo ${name}"], capture_output=True, text=True, check=True
    ).stdout.strip()


def cache_dir() -> Path:
    root = Path(os.environ.get("SPOT_EXTENDER_CACHE", Path.home() / ".cache" / "spot-extender"))
    return root / f"k8s-{pinned('K8S_VERSION')}"


def bin_dir() -> Path:
    return cache_dir() / "bin"


def binaries_present() -> bool:
    names = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
    return all((bin_dir() / n).is_file() for n in names)


@dataclass
class Component:
    name: str
    argv: list[str]
    log: Path
    env: dict | None = None
    process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log, "ab")
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=self.env,
        )
        log.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        self.process = None

    def tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


@dataclass
class ExtenderOptions:
    """How kube-scheduler calls the extender."""

    port: int = field(default_factory=free_port)
    node_cache_capable: bool = True
    filter_verb: bool = True  # False: kube-scheduler calls prioritize only
    # The scheduler adds extender score x weight x 10 to the plugins' total. The
    # class gap is at least 2 points (preferred 6..10 vs other 0..4) = 400 at weight
    # 20, above what the default score plugins can swing between two feasible nodes
    # in practice (TaintToleration 3x100, PodTopologySpread 2x100, resource fit);
    # one point of spread is 200, enough to win over their tie-breaking.
    weight: int = 20
    https: bool = False
    ca_file: str | None = None
    # The scheduler's own certificate, for an extender that requires one (--tls-client-ca-file).
    client_cert: str | None = None
    client_key: str | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://127.0.0.1:{self.port}"


START_BURST = 300  # kube-controller-manager's client burst (see _controller_manager_argv)


class ControlPlane:
    """`api_qps`: client rate limit of the scheduler and controller-manager (their defaults,
    50 and 20 per second, would be what a throughput benchmark measures).
    `pod_ready_ms`: how long KWOK takes to make a bound pod Ready, like a container start."""

    def __init__(self, workdir: Path | None = None, extender: ExtenderOptions | None = None, log=print,
                 api_qps: int | None = None, pod_ready_ms: int = 0):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="spot-extender-cluster-"))
        self.extender = extender or ExtenderOptions()
        # (cert, key) kube-apiserver presents to admission webhooks, for one that requires it.
        self.webhook_client_cert: tuple[Path, Path] | None = None
        # More kube-apiserver flags, e.g. --enable-aggregator-routing=true: webhooks that
        # name a Service are then called at its EndpointSlices' addresses (no kube-proxy here).
        self.apiserver_args: list[str] = []
        self.use_extender = True
        self.scheduler_feature_gates = ""  # e.g. "OpportunisticBatching=false"
        self.scheduler_url = ""  # its secure port, once started (healthz, pprof)
        self.api_qps = api_qps
        self.pod_ready_ms = pod_ready_ms
        self.bins = bin_dir()
        self.log = log
        self.token = secrets.token_hex(16)
        self.components: dict[str, Component] = {}
        self.apiserver_port = free_port()
        self.server = f"https://127.0.0.1:{self.apiserver_port}"
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.ca_file = self.workdir / "certs" / "apiserver.crt"
        self.api = Api(self.server, self.token, None)

    # ---- lifecycle -----------------------------------------------------------------

    def start(self) -> "ControlPlane":
        if not binaries_present():
            raise RuntimeError(f"control plane binaries missing in {self.bins}: run `make cluster-bins`")
        started = time.monotonic()
        try:
            self._write_credentials()
            self._start_etcd()
            self._start_apiserver()
            self._start("kube-controller-manager", self._controller_manager_argv())
            self.start_scheduler()
            self._start("kwok", self._kwok_argv())
            wait_for(lambda: self.api.exists("/api/v1/namespaces/default/serviceaccounts/default"), 60,
                     what="the default service account")
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):  # the user stopped it: no log dump
                self.log(self.dump_logs())
            self.stop()
            raise
        self.log(f"    control plane up in {time.monotonic() - started:.1f}s ({self.server})")
        return self

    def stop(self) -> None:
        for name in reversed(list(self.components)):
            self.components[name].stop()

    def stop_apiserver(self) -> None:
        """Take kube-apiserver away (fault injection); start_apiserver brings it back."""
        self.components["kube-apiserver"].stop()

    def start_apiserver(self) -> None:
        """The same kube-apiserver again: same port, certificates and etcd."""
        self.components["kube-apiserver"].start()
        wait_for(lambda: self.api.get("/readyz") is not None, 90, what="kube-apiserver /readyz after a restart")

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "ControlPlane":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def dump_logs(self, lines: int = 60) -> str:
        parts = []
        for name, component in self.components.items():
            state = "running" if component.running else "stopped"
            parts.append(f"----- {name} ({state}), last {lines} lines of {component.log} -----\n{component.tail(lines)}")
        return "\n".join(parts)

    def check_running(self) -> None:
        dead = [n for n, c in self.components.items() if c.process is not None and not c.running]
        if dead:
            raise RuntimeError(f"control plane components died: {', '.join(dead)}\n{self.dump_logs()}")

    # ---- components ----------------------------------------------------------------

    def _start(self, name: str, argv: list[str]) -> Component:
        component = Component(name, argv, self.workdir / f"{name}.log")
        self.components[name] = component
        component.start()
        return component

    def _write_credentials(self) -> None:
        (self.workdir / "certs").mkdir(parents=True, exist_ok=True)
        key, pub = self.workdir / "sa.key", self.workdir / "sa.pub"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True)
        (self.workdir / "tokens.csv").write_text(f'{self.token},admin,admin,"system:masters"\n')

    def write_kubeconfig(self, path: Path, token: str, server: str | None = None) -> Path:
        """`server`: another address for the same API server (a proxy in front of it)."""
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: local\n  cluster:\n    server: {server or self.server}\n"
            f"    certificate-authority: {self.ca_file}\n"
            f"users:\n- name: user\n  user:\n    token: {token}\n"
            "contexts:\n- name: local\n  context:\n    cluster: local\n    user: user\n"
            "current-context: local\n"
        )
        return path

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._start("etcd", [
            str(self.bins / "etcd"), "--name=local", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=local=http://127.0.0.1:{peer}", "--initial-cluster-state=new",
            "--unsafe-no-fsync", "--log-level=warn",
        ])
        wait_for(lambda: http_ok(f"{self.etcd_url}/health"), 30, what="etcd health")

    def _start_apiserver(self) -> None:
        self._start("kube-apiserver", [
            str(self.bins / "kube-apiserver"), f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}", f"--cert-dir={self.workdir / 'certs'}",
            f"--token-auth-file={self.workdir / 'tokens.csv'}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.workdir / 'sa.pub'}",
            f"--service-account-signing-key-file={self.workdir / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", "--endpoint-reconciler-type=none",
            *self._admission_argv(), *self.apiserver_args,
        ])
        wait_for(lambda: self.ca_file.exists() and self.api.get("/readyz") is not None, 90, what="kube-apiserver /readyz")
        self.api = Api(self.server, self.token, str(self.ca_file))
        self.write_kubeconfig(self.kubeconfig, self.token)

    def _admission_argv(self) -> list[str]:
        """How kube-apiserver authenticates to admission webhooks: a kubeconfig whose user
        "*" (any webhook) is a client certificate, named in an AdmissionConfiguration."""
        if self.webhook_client_cert is None:
            return []
        cert, key = self.webhook_client_cert
        kubeconfig = self.workdir / "webhook-client.kubeconfig"
        kubeconfig.write_text(
            'apiVersion: v1\nkind: Config\nusers:\n- name: "*"\n  user:\n'
            f"    client-certificate: {cert}\n    client-key: {key}\n"
        )
        config = self.workdir / "admission.yaml"
        config.write_text(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n"
            "- name: MutatingAdmissionWebhook\n  configuration:\n"
            "    apiVersion: apiserver.config.k8s.io/v1\n    kind: WebhookAdmissionConfiguration\n"
            f"    kubeConfigFile: {kubeconfig}\n"
        )
        return [f"--admission-control-config-file={config}"]

    def _controller_manager_argv(self) -> list[str]:
        return [
            str(self.bins / "kube-controller-manager"), f"--kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.workdir / 'sa.key'}",
            f"--root-ca-file={self.ca_file}", "--service-cluster-ip-range=10.96.0.0/16",
            # Fast reaction to lost nodes and orphaned pods, so reclaim scenarios fit in a test.
            "--node-monitor-grace-period=20s", "--terminated-pod-gc-threshold=100",
            "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
        ] + ([f"--kube-api-qps={self.api_qps}", f"--kube-api-burst={self.api_qps}"] if self.api_qps
             # Its start-up (discovery, informers, the default ServiceAccounts) is a burst of
             # requests: at the default burst of 30 it waited about 4 s more on every start.
             # The steady rate stays the default 20/s.
             else [f"--kube-api-burst={START_BURST}"])

    def scheduler_config(self) -> str:
        ext = self.extender
        tls = ""
        if ext.https:
            # caData, as the documented configuration has it: the scheduler verifies the extender.
            ca_data = base64.b64encode(Path(ext.ca_file).read_bytes()).decode() if ext.ca_file else ""
            fields = (f"      caData: {ca_data}\n" if ca_data else "") + (
                f"      certFile: {ext.client_cert}\n      keyFile: {ext.client_key}\n" if ext.client_cert else "")
            tls = "    enableHTTPS: true\n" + (f"    tlsConfig:\n{fields}" if fields else "")
        head = (
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
            f"clientConnection:\n  kubeconfig: {self.kubeconfig}\n"
            + (f"  qps: {self.api_qps}\n  burst: {self.api_qps}\n" if self.api_qps else "")
            + "leaderElection:\n  leaderElect: false\n"
        )
        # percentageOfNodesToScore stays adaptive, as it ships: the extender's floor hold
        # copes with a sample that leaves out the on-demand nodes.
        if not self.use_extender:
            return head
        return head + (
            "extenders:\n"
            f"  - urlPrefix: {ext.url}\n"
            + ("    filterVerb: filter\n" if ext.filter_verb else "")
            + "    prioritizeVerb: prioritize\n"
            f"    weight: {ext.weight}\n"
            f"    nodeCacheCapable: {str(ext.node_cache_capable).lower()}\n"
            "    ignorable: true\n    httpTimeout: 5s\n" + tls
        )

    def start_scheduler(self, extender: ExtenderOptions | None = None, use_extender: bool | None = None,
                        feature_gates: str | None = None) -> None:
        """(Re)start kube-scheduler, optionally with other extender options or none at all."""
        if extender is not None:
            self.extender = extender
        if use_extender is not None:
            self.use_extender = use_extender
        if feature_gates is not None:
            self.scheduler_feature_gates = feature_gates
        self.stop_scheduler()
        config = self.workdir / "scheduler-config.yaml"
        config.write_text(self.scheduler_config())
        port = free_port()
        self._start("kube-scheduler", [
            str(self.bins / "kube-scheduler"), f"--config={config}",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            # Its delegated authentication cannot check our token; health, metrics and CPU profiles need none.
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics,/debug/pprof/profile",
        ] + ([f"--feature-gates={self.scheduler_feature_gates}"] if self.scheduler_feature_gates else []))
        self.scheduler_url = f"https://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{self.scheduler_url}/healthz", insecure=True), 60, what="kube-scheduler /healthz")

    def stop_scheduler(self) -> None:
        old = self.components.pop("kube-scheduler", None)
        if old is not None:
            old.stop()

    def _kwok_stages(self) -> Path:
        """The stages, a pod's start-up (bound to Ready) delayed by pod_ready_ms, or by the
        pod's own POD_READY_DELAY annotation ("30s") where it has one."""
        stages = cache_dir() / "kwok-stages.yaml"
        marker = "  name: pod-ready\nspec:\n"
        text = stages.read_text()
        if marker not in text:
            raise RuntimeError(f"no pod-ready stage in {stages} to delay")
        delayed = self.workdir / "kwok-stages.yaml"
        delayed.write_text(text.replace(marker, (
            f"{marker}  delay:\n    durationMilliseconds: {self.pod_ready_ms}\n"
            f"    durationFrom:\n      expressionFrom: '.metadata.annotations[\"{POD_READY_DELAY}\"]'\n")))
        return delayed

    def _kwok_argv(self) -> list[str]:
        return [
            str(self.bins / "kwok"), f"--kubeconfig={self.kubeconfig}",
            "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--config={self._kwok_stages()}", f"--server-address=127.0.0.1:{free_port()}",
            "--node-lease-duration-seconds=40",
        ]


def http_ok(url: str, insecure: bool = False) -> bool:
    import ssl
    import urllib.request

    context = ssl._create_unverified_context() if insecure else None
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return resp.status == 200
    except OSError:
        return False


def make_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a serving certificate it signed, for 127.0.0.1 and the in-cluster name."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.crt", "tls.key", "tls.csr", "tls.crt"))
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=spot-extender-test-ca",
        "-keyout", str(ca_key), "-out", str(ca))
    # ECDSA P-256, as cert-manager issues it in k8s/overlays/webhook-cert-manager: kube-apiserver
    # opens a connection per concurrent admission, and an RSA handshake costs several times more.
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=spot-extender",
        "-keyout", str(key), "-out", str(csr))
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:spot-extender.kube-system.svc\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
        "-extfile", str(extensions), "-out", str(cert))
    return ca, cert, key


def make_client_cert(directory: Path, name: str) -> tuple[Path, Path]:
    """A client certificate signed by the CA make_tls wrote into directory."""
    key, csr, cert = (directory / f"{name}{ext}" for ext in (".key", ".csr", ".crt"))
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
    usage = directory / f"{name}.cnf"
    usage.write_text("extendedKeyUsage=clientAuth\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(directory / "ca.crt"), "-CAkey", str(directory / "ca.key"),
        "-CAcreateserial", "-days", "2", "-extfile", str(usage), "-out", str(cert))
    return cert, key


def service_account_kubeconfig(cluster: ControlPlane, namespace: str, name: str) -> Path:
    """A kubeconfig carrying a token for the ServiceAccount, from the TokenRequest API."""
    review = cluster.api.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 86400}},
    )
    return cluster.write_kubeconfig(cluster.workdir / f"{name}.kubeconfig", review["status"]["token"])


def kubectl(cluster: ControlPlane, *args: str, kubeconfig: Path | None = None,
            input_text: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir() / "kubectl"), f"--kubeconfig={kubeconfig or cluster.kubeconfig}", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, input=input_text)


def installed_command() -> str:
    """The `spot-extender` script pip installed beside this interpreter: tests run what users run."""
    command = Path(sys.executable).with_name("spot-extender")
    if not command.exists():
        raise RuntimeError(f"{command} is missing: install the project first (make venv)")
    return str(command)


class ExtenderProcess:
    """spot-extender itself, run as a local process against the control plane."""

    def __init__(self, cluster: ControlPlane, *extra_args: str, kubeconfig: Path | None = None, name="spot-extender",
                 port: int | None = None, ca_file: Path | None = None, client_cert: tuple[Path, Path] | None = None,
                 ssl_context: ssl.SSLContext | None = None):
        """`port`: for extra processes the scheduler does not call; default the scheduler's extender port.
        With --tls-cert-file among the args it serves HTTPS, checked against `ca_file`; `client_cert`
        (cert, key) is what this harness presents, as it must with --tls-client-ca-file."""
        self.cluster = cluster
        port = port or cluster.extender.port
        argv = [installed_command(), "serve", f"--kubeconfig={kubeconfig or cluster.kubeconfig}",
                "--host=127.0.0.1", f"--port={port}", *extra_args]
        self.component = Component(name, argv, cluster.workdir / f"{name}.log")
        https = any(arg.startswith(("--tls-cert-file=", "--webhook-cert-secret=")) for arg in extra_args)
        self.url = f"{'https' if https else 'http'}://127.0.0.1:{port}"
        self.ssl_context = ssl_context or (ssl.create_default_context(cafile=str(ca_file)) if https and ca_file else None)
        if self.ssl_context is not None and client_cert is not None:
            self.ssl_context.load_cert_chain(*map(str, client_cert))

    def start(self, wait_ready: bool = True) -> "ExtenderProcess":
        self.cluster.components[self.component.name] = self.component
        self.component.start()
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if not self.component.running:
                raise RuntimeError(f"spot-extender exited:\n{self.component.tail()}")
            try:
                return json.loads(self.get("/readyz")).get("status") == "ready"
            except OSError:
                return False

        wait_for(ready, timeout, what="spot-extender /readyz")

    def stop(self) -> None:
        self.component.stop()

    def get(self, path: str) -> str:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.url + path, timeout=5, context=self.ssl_context) as resp:
                return resp.read().decode()
        except urllib.error.HTTPError as exc:  # /readyz answers 503 while syncing
            return exc.read().decode()
