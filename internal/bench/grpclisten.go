package main

import (
	"strconv"
	"strings"
)

// protoGRPCListen is gRPC over h2c to corsgate's --grpc-listen: the same
// connect-go gRPC client as protoGRPC, to the listener served by grpc-go's
// own HTTP/2 server instead of net/http's. Only corsgate has it; compare it
// with protoGRPC on native, the backend called directly.
const protoGRPCListen = "grpc/native-transport"

// flagGRPCListen is the corsgate serve flag of that listener.
const flagGRPCListen = "--grpc-listen"

// init adds the protocol to the tables of client.go and targets.go.
func init() {
	protocols[protoGRPCListen] = protocol{name: protoGRPCListen, label: "gRPC, h2c, --grpc-listen", h2c: true,
		opts: protocols[protoGRPC].opts}
	unaryProtocols = append(unaryProtocols, protoGRPCListen)
	candidates[targetCorsgate] = append(candidates[targetCorsgate], protoGRPCListen)
}

// grpcListenArgs returns the arguments that give corsgate (whose serve
// --help is help) a --grpc-listen on a free port, and the address clients
// of protoGRPCListen call; none when the binary has no such flag (then the
// protocol's probe fails and its cells show n/a).
func grpcListenArgs(help string) (args []string, addrs map[string]string, err error) {
	if !strings.Contains(help, flagGRPCListen) {
		return nil, nil, nil
	}
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return []string{flagGRPCListen + "=" + addr}, map[string]string{protoGRPCListen: addr}, nil
}

// addrFor is the address clients of protocol name call on t.
func (t *target) addrFor(name string) string {
	if a, ok := t.addrs[name]; ok {
		return a
	}
	return t.addr
}
