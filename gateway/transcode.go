package gateway

import (
	"bytes"
	"compress/gzip"
	"io"
	"strconv"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The JSON codec is the only place where the gateway looks inside messages:
// gRPC backends in general speak only the binary form, so JSON from
// gRPC-Web (+json) and Connect clients is re-encoded with the method's
// descriptors, both ways. Compressed JSON messages are decompressed first;
// the binary messages go to the backend, and the JSON ones back to the
// client, uncompressed.

// jsonToProto re-encodes a request message from JSON to binary.
func (c *call) jsonToProto(data []byte) ([]byte, *rpcStatus) {
	msg := dynamicpb.NewMessage(c.route.input)
	if len(bytes.TrimSpace(data)) > 0 {
		opts := protojson.UnmarshalOptions{DiscardUnknown: true, Resolver: c.route.types}
		if err := opts.Unmarshal(data, msg); err != nil {
			return nil, errorf(connect.CodeInvalidArgument, "unmarshal JSON into "+string(c.route.input.FullName())+": "+err.Error())
		}
	}
	out, err := proto.Marshal(msg)
	if err != nil {
		return nil, errorf(connect.CodeInternal, "marshal "+string(c.route.input.FullName())+": "+err.Error())
	}
	return out, nil
}

// protoToJSON re-encodes a response message from binary to JSON.
func (c *call) protoToJSON(data []byte) ([]byte, *rpcStatus) {
	msg := dynamicpb.NewMessage(c.route.output)
	if err := (proto.UnmarshalOptions{Resolver: c.route.types}).Unmarshal(data, msg); err != nil {
		return nil, errorf(connect.CodeInternal, "unmarshal "+string(c.route.output.FullName())+" from the backend: "+err.Error())
	}
	out, err := (protojson.MarshalOptions{Resolver: c.route.types}).Marshal(msg)
	if err != nil {
		return nil, errorf(connect.CodeInternal, "marshal "+string(c.route.output.FullName())+" as JSON: "+err.Error())
	}
	return out, nil
}

var gzipReaders sync.Pool

// decompress undoes a message's compression. Only gzip is known; another
// encoding is UNIMPLEMENTED, and a compressed message without an encoding
// is INTERNAL, as gRPC says. The result is bounded by limit.
func decompress(encoding string, data []byte, limit int) ([]byte, *rpcStatus) {
	switch encoding {
	case "gzip":
	case "", "identity":
		return nil, errorf(connect.CodeInternal, "message is flagged compressed but no encoding was given")
	default:
		return nil, errorf(connect.CodeUnimplemented, "unknown compression "+strconv.Quote(encoding)+": only gzip is supported")
	}
	var zr *gzip.Reader
	if v := gzipReaders.Get(); v != nil {
		zr = v.(*gzip.Reader) //nolint:errcheck // the pool holds only *gzip.Reader
		if err := zr.Reset(bytes.NewReader(data)); err != nil {
			return nil, errorf(connect.CodeInvalidArgument, "gzip: "+err.Error())
		}
	} else {
		var err error
		if zr, err = gzip.NewReader(bytes.NewReader(data)); err != nil {
			return nil, errorf(connect.CodeInvalidArgument, "gzip: "+err.Error())
		}
	}
	defer gzipReaders.Put(zr)
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return nil, errorf(connect.CodeInvalidArgument, "gzip: "+err.Error())
	}
	if len(out) > limit {
		return nil, errorf(connect.CodeResourceExhausted, "decompressed message is larger than the limit of "+strconv.Itoa(limit)+" bytes")
	}
	return out, nil
}

// checkGzipSize refuses a gzip-compressed message that decompresses to more
// than limit bytes, without keeping the decompressed bytes. A message that is
// not valid gzip passes: the backend judges it.
func checkGzipSize(data []byte, limit int) *rpcStatus {
	var zr *gzip.Reader
	if v := gzipReaders.Get(); v != nil {
		zr = v.(*gzip.Reader) //nolint:errcheck // the pool holds only *gzip.Reader
		if err := zr.Reset(bytes.NewReader(data)); err != nil {
			return nil
		}
	} else {
		var err error
		if zr, err = gzip.NewReader(bytes.NewReader(data)); err != nil {
			return nil
		}
	}
	defer gzipReaders.Put(zr)
	n, _ := io.Copy(io.Discard, io.LimitReader(zr, int64(limit)+1))
	if n > int64(limit) {
		return errorf(connect.CodeResourceExhausted, "decompressed message is larger than the limit of "+strconv.Itoa(limit)+" bytes")
	}
	return nil
}
