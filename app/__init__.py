"""spot-extender: a kube-scheduler extender that keeps an on-demand floor per workload."""

from importlib.metadata import PackageNotFoundError, version

try:
    # pyproject.toml holds the one version; installed metadata carries it here.
    __version__ = version("spot-extender")
except PackageNotFoundError:  # a source tree on PYTHONPATH that was never installed
    __version__ = "0+unknown"
