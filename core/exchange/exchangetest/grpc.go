package exchangetest

import "google.golang.org/protobuf/proto"

// RawCodec is a gRPC codec for test services whose messages are bytes: *[]byte
// passes as it is, and protobuf messages (the standard health service's) as
// protobuf. Servers take it with grpc.ForceServerCodec, clients with grpc.ForceCodec.
type RawCodec struct{}

// Marshal encodes v.
func (RawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return proto.Marshal(v.(proto.Message))
}

// Unmarshal decodes b into v.
func (RawCodec) Unmarshal(b []byte, v any) error {
	if p, ok := v.(*[]byte); ok {
		*p = append([]byte(nil), b...)
		return nil
	}
	return proto.Unmarshal(b, v.(proto.Message))
}

// Name is the codec's name on the wire.
func (RawCodec) Name() string { return "raw" }
