package proto_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	pb "github.com/switchyard-lb/switchyard/sdk/proto"
)

// oldStartRequest is StartRequest as a plugin built before pools knows it: without
// its pool field.
func oldStartRequest(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	fdp := protodesc.ToFileDescriptorProto(pb.File_sdk_proto_strategy_proto)
	for _, m := range fdp.MessageType {
		if m.GetName() != "StartRequest" {
			continue
		}
		for i, f := range m.Field {
			if f.GetName() == "pool" {
				m.Field = append(m.Field[:i], m.Field[i+1:]...)
				break
			}
		}
	}
	fd, err := protodesc.NewFile(fdp, new(protoregistry.Files))
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().ByName("StartRequest")
}

// TestStartRequestPoolIsCompatible: the pool the core names at Start is a field
// that a plugin built before pools skips, and that a core built before pools
// leaves empty; so the handshake's ProtocolVersion stays.
func TestStartRequestPoolIsCompatible(t *testing.T) {
	// A new core starts an old plugin.
	sent, err := proto.Marshal(&pb.StartRequest{Options: []byte(`{"a":1}`), SocketPath: "/run/s.sock", Pool: "api"})
	if err != nil {
		t.Fatal(err)
	}
	desc := oldStartRequest(t)
	old := dynamicpb.NewMessage(desc)
	if err := proto.Unmarshal(sent, old); err != nil {
		t.Fatalf("an old plugin decoding a new StartRequest: %v", err)
	}
	opts := old.Get(desc.Fields().ByName("options")).Bytes()
	sock := old.Get(desc.Fields().ByName("socket_path")).String()
	if string(opts) != `{"a":1}` || sock != "/run/s.sock" {
		t.Errorf("an old plugin read options %s, socket_path %q; want {\"a\":1}, /run/s.sock", opts, sock)
	}

	// An old core starts a new plugin.
	old = dynamicpb.NewMessage(desc)
	old.Set(desc.Fields().ByName("socket_path"), protoreflect.ValueOfString("/run/s.sock"))
	sent, err = proto.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	var got pb.StartRequest
	if err := proto.Unmarshal(sent, &got); err != nil {
		t.Fatalf("a new plugin decoding an old StartRequest: %v", err)
	}
	if got.GetSocketPath() != "/run/s.sock" || got.GetPool() != "" {
		t.Errorf("a new plugin read socket_path %q, pool %q; want /run/s.sock and no pool", got.GetSocketPath(), got.GetPool())
	}
}
