package main

import (
	"slices"
	"strconv"
	"strings"
)

// protoGRPCListen is gRPC over h2c to corsgate's --grpc-listen: the same
// connect-go gRPC client as grpc/h2c, to the listener served by grpc-go's
// own HTTP/2 server instead of net/http's. Only corsgate has it; compare it
// with grpc/h2c on native, the backend called directly.
const protoGRPCListen = "grpc/native-transport"

// flagGRPCListen is the corsgate serve flag of that listener.
const flagGRPCListen = "--grpc-listen"

// init adds the protocol to the tables of client.go and targets.go, after
// grpc/h2c.
func init() {
	p := protocols[protoGRPCH2C]
	p.name = protoGRPCListen
	protocols[protoGRPCListen] = p
	insert := func(list []string) []string {
		return slices.Insert(list, slices.Index(list, protoGRPCH2C)+1, protoGRPCListen)
	}
	unaryProtocols = insert(unaryProtocols)
	allProtocols = insert(allProtocols)
	candidates[targetCorsgate] = insert(candidates[targetCorsgate])
}

// grpcListenArgs returns the arguments that give corsgate (whose serve
// --help is help) a --grpc-listen on a free port, and the address clients
// of protoGRPCListen call; none when the binary has no such flag (then the
// protocol's probe fails and its cells show n/a).
func grpcListenArgs(help string) (args []string, addr string, err error) {
	if !strings.Contains(help, flagGRPCListen) {
		return nil, "", nil
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr = "127.0.0.1:" + strconv.Itoa(port)
	return []string{flagGRPCListen + "=" + addr}, addr, nil
}
