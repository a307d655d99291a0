// Package e2e is the end-to-end suite: it builds the core, the test backend and a
// test plugin, runs them as processes, and drives them over the network, once per
// front (the event loop, then the goroutine-per-connection front).
package e2e
