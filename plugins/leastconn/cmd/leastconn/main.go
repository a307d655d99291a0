// Command leastconn is the bundled least-connections strategy as a standalone plugin
// binary.
package main

import (
	"github.com/switchyard-lb/switchyard/plugins/leastconn"
	"github.com/switchyard-lb/switchyard/sdk"
)

func main() { sdk.Serve(leastconn.New()) }
