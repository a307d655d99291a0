package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/switchyard-lb/switchyard/sdk/proto"
)

// Serve runs s as a strategy plugin for the load balancer. A plugin's main calls it
// and nothing else; it returns only when the load balancer is gone.
//
// Lines written with the standard log package reach the load balancer's log, marked
// with the plugin's name.
func Serve(s Strategy) {
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: os.Stderr, JSONFormat: true})
	log.SetFlags(0)
	log.SetOutput(logger.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}))
	go exitWhenOrphaned(os.Getppid())
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &GRPCPlugin{Impl: s}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          logger,
	})
}

// exitWhenOrphaned ends the plugin when the process that started it is gone, so a
// plugin never outlives its load balancer, even one killed with SIGKILL.
func exitWhenOrphaned(parent int) {
	for range time.Tick(500 * time.Millisecond) {
		if os.Getppid() != parent {
			os.Exit(0)
		}
	}
}

// acceptMore serves the pick channels that a load balancer's data-plane processes
// open after the core's own, each a session of its own over the one strategy.
func acceptMore(ln net.Listener, first *session) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			if err := first.another().serve(conn); err != nil {
				log.Printf("[DEBUG] pick channel of a data-plane process closed: %v", err)
			}
		}()
	}
}

// controlServer answers the core's control calls in the plugin process.
type controlServer struct {
	proto.UnimplementedStrategyServer
	impl    Strategy
	started sync.Once
}

// Start configures the strategy and opens the pick channel.
func (c *controlServer) Start(_ context.Context, req *proto.StartRequest) (*proto.StartResponse, error) {
	err := errors.New("strategy: Start called twice")
	var resp *proto.StartResponse
	c.started.Do(func() { resp, err = c.start(req) })
	return resp, err
}

func (c *controlServer) start(req *proto.StartRequest) (*proto.StartResponse, error) {
	if conf, ok := c.impl.(Configurer); ok {
		opts := json.RawMessage("null") // no options in config.json, as documented
		if len(req.Options) > 0 {
			opts = req.Options
		}
		if err := conf.Configure(opts); err != nil {
			return nil, fmt.Errorf("configuring strategy: %w", err)
		}
	}
	ln, err := net.Listen("unix", req.SocketPath)
	if err != nil {
		return nil, fmt.Errorf("opening the pick channel: %w", err)
	}
	mu := new(sync.Mutex)
	sess := newSession(c.impl, mu, req.Pool)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			log.Printf("[ERROR] pick channel: %v", err)
			os.Exit(1)
		}
		go acceptMore(ln, sess)
		err = sess.serve(conn)
		// The core closed its channel: it stopped this plugin, or is gone.
		if err != nil {
			log.Printf("[DEBUG] pick channel closed: %v", err)
		}
		os.Exit(0)
	}()
	resp := &proto.StartResponse{Headers: sess.headers, Schedules: sess.scheduler != nil}
	_, resp.Observes = c.impl.(Observer)
	return resp, nil
}
