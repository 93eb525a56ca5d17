// Command etcd is a minimal entry point for the etcd server, built by
// ../build-bins.sh in a generated wrapper module that requires
// go.etcd.io/etcd/server/v3 at $ETCD_VERSION (see versions.env).
//
// etcd's own main package lives in the go.etcd.io/etcd/v3 root module, which
// uses local replace directives and so cannot be built from the module proxy;
// the server module's etcdmain package is the real implementation.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
