package strategy

import (
	"os"

	"github.com/switchyard-lb/switchyard/plugins/leastconn"
	"github.com/switchyard-lb/switchyard/plugins/weighted"
	"github.com/switchyard-lb/switchyard/sdk"
)

// pluginModeEnv names the bundled strategy a re-executed core should serve.
const pluginModeEnv = "SWITCHYARD_BUNDLED_STRATEGY"

// Bundled lists the strategies built into the core.
var Bundled = []string{leastconn.Name, weighted.Name}

// NewBundled returns a new instance of the bundled strategy name, nil if there is none.
func NewBundled(name string) sdk.Strategy {
	switch name {
	case leastconn.Name:
		return leastconn.New()
	case weighted.Name:
		return weighted.New()
	}
	return nil
}

// PluginMode reports whether this process was started by a core to serve a bundled
// strategy, and which. The core's main then calls sdk.Serve(NewBundled(name)).
func PluginMode() (string, bool) {
	name := os.Getenv(pluginModeEnv)
	return name, name != "" && NewBundled(name) != nil
}
