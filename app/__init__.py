"""spot-extender: a kube-scheduler extender that keeps an on-demand floor per workload."""
