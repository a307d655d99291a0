// Package proto holds the gRPC control protocol between the core and a strategy
// plugin, generated from strategy.proto. Plugin authors never use it directly.
package proto

//go:generate protoc --go_out=../.. --go_opt=module=github.com/switchyard-lb/switchyard --go-grpc_out=../.. --go-grpc_opt=module=github.com/switchyard-lb/switchyard -I ../.. sdk/proto/strategy.proto
