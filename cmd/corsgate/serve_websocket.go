package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/config"
)

// Flags (and config keys) of the WebSocket transport.
const (
	flagWebSockets                  = "websockets"
	flagWebSocketPingInterval       = "websocket-ping-interval"
	flagWebSocketMaxStreams         = "websocket-max-streams"
	flagWebSocketAllowMissingOrigin = "websocket-allow-missing-origin"
)

// websocketFlags are corsgate serve's flags of improbable-eng/grpc-web's
// WebSocket transport.
type websocketFlags struct {
	on            bool
	ping          time.Duration
	maxStreams    int
	missingOrigin bool
}

func (w *websocketFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&w.on, flagWebSockets, false, "also serve improbable-eng/grpc-web's WebSocket transport (grpcwebproxy's --use_websockets): client and bidi streams from browsers, behind the CORS policy's Origin check")
	fs.DurationVar(&w.ping, flagWebSocketPingInterval, gateway.DefaultWebSocketPingInterval, "with --websockets: how often open streams are pinged; a peer that does not answer within it is cut; 0 never pings")
	fs.IntVar(&w.maxStreams, flagWebSocketMaxStreams, gateway.DefaultMaxWebSocketStreams, "with --websockets: WebSocket streams open at once; more are answered 503")
	fs.BoolVar(&w.missingOrigin, flagWebSocketAllowMissingOrigin, false, "with --websockets: let upgrades without Origin (clients that are not browsers) through")
}

// config is the gateway's WebSocket config, nil when off.
func (w *websocketFlags) config() *gateway.WebSocketConfig {
	if !w.on {
		return nil
	}
	ping := w.ping
	if ping <= 0 {
		ping = -1
	}
	return &gateway.WebSocketConfig{AllowMissingOrigin: w.missingOrigin, PingInterval: ping, MaxStreams: w.maxStreams}
}

// validate checks the flags' values when WebSockets are on.
func (w *websocketFlags) validate() error {
	if !w.on {
		return nil
	}
	if err := config.CheckWebSocketStreams(w.maxStreams); err != nil {
		return cliflags.Usagef("--%s %w", flagWebSocketMaxStreams, err)
	}
	if err := config.CheckWebSocketPing(w.ping); err != nil {
		return cliflags.Usagef("--%s %w", flagWebSocketPingInterval, err)
	}
	return nil
}
