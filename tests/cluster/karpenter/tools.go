//go:build tools

// Package karpenter is a throw-away wrapper module used by ../build-bins.sh to
// build Karpenter's KWOK cloud provider at $KARPENTER_VERSION (see
// versions.env). The go.mod is generated in the build cache; this file only
// records the command package.
package karpenter

import (
	_ "sigs.k8s.io/karpenter/kwok"
)
