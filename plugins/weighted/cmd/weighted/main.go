// Command weighted is the bundled smooth weighted round robin strategy as a standalone
// plugin binary.
package main

import (
	"github.com/switchyard-lb/switchyard/plugins/weighted"
	"github.com/switchyard-lb/switchyard/sdk"
)

func main() { sdk.Serve(weighted.New()) }
