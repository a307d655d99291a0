package sdk

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/switchyard-lb/switchyard/sdk/proto"
)

// Handshake is the go-plugin handshake between the core and a strategy plugin. Used by
// the core; plugin authors need only Strategy and Serve.
//
// The magic cookie values must never change. ProtocolVersion changes when the
// protocol between the core and plugins changes incompatibly.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "SWITCHYARD_STRATEGY_PLUGIN",
	MagicCookieValue: "5b8a1c4e-balance-me",
}

// PluginName is the name of the strategy plugin in go-plugin's plugin set. Used by
// the core.
const PluginName = "strategy"

// GRPCPlugin is the go-plugin plugin of a strategy. Used by the core (to dispense a
// proto.StrategyClient) and by Serve (with Impl set); plugin authors need only
// Strategy and Serve.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the strategy a plugin process serves; nil in the core.
	Impl Strategy
}

// GRPCServer registers the strategy's control service.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterStrategyServer(s, &controlServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a proto.StrategyClient for the core.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return proto.NewStrategyClient(c), nil
}

// Interface guards
var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)
