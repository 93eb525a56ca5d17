//go:build tools

// Package kwok is a throw-away wrapper module used by ../build-bins.sh to build
// the KWOK controller at $KWOK_VERSION (see versions.env). The go.mod is
// generated in the build cache; this file only records the command package.
package kwok

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
