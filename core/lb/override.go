package lb

import (
	"net"
	"strconv"

	"github.com/switchyard-lb/switchyard/core/config"
)

// Overrides replace addresses of config.json from the command line, so that several
// instances can serve one configuration file on one host.
type Overrides struct {
	Listen string // host:port of the client listener, "" to keep config.json's
	Admin  string // admin_addr, "" to keep config.json's
}

// Apply writes o into cfg, which keeps them across reloads as its file changes.
func (o Overrides) Apply(cfg *config.Config) error {
	if o.Listen != "" {
		host, port, err := net.SplitHostPort(o.Listen)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 0 || n > 65535 {
			return &config.Error{File: "-listen", Msg: "must be host:port (host may be empty), got " + strconv.Quote(o.Listen)}
		}
		cfg.LoadBalancer.Host, cfg.LoadBalancer.Port = host, config.Port(n)
	}
	if o.Admin != "" {
		cfg.LoadBalancer.AdminAddr = o.Admin
	}
	return nil
}
