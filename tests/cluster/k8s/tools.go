//go:build tools

// Package k8s is a throw-away wrapper module used by ../build-bins.sh to build
// Kubernetes control-plane binaries from the k8s.io/kubernetes Go module.
//
// The go.mod for this package is NOT committed: build-bins.sh generates it in
// the build cache from k8s.io/kubernetes' own go.mod at $K8S_VERSION (see
// versions.env), replacing every staging module (k8s.io/api, k8s.io/client-go,
// ...) that kubernetes requires at v0.0.0 with the matching v0.<minor>.<patch>
// release. This file only records which command packages are built.
package k8s

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
