//go:build tools

// Package helm is a throw-away wrapper module used by ../build-bins.sh to build the
// helm CLI at $HELM_VERSION (see versions.env), for the chart tests. The go.mod is
// generated in the build cache; this file only records the command package.
package helm

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
