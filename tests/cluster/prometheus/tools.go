//go:build tools

// Package prometheus is a throw-away wrapper module used by ../build-bins.sh (with
// BUILD_PROMETHEUS=1) to build Prometheus at $PROMETHEUS_VERSION (see versions.env), for
// `make dashboard`. The go.mod is generated in the build cache; this file only records
// the command package.
package prometheus

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
)
