module spot-extender/noop-webhook

go 1.22
