package main

import (
	"context"
	"encoding/json"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/cliflags"
)

func init() { register(newPolicyCmd) }

func newPolicyCmd() *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Print the whole derived CORS table as JSON, with where each rule comes from",
		Long: `Print the CORS table corsgate serve would derive, as JSON: per route and
procedure, the allowed methods, request headers and exposed headers, the
origins, credentials, browser_barred, and the source of each rule: "default"
(the protocols' own headers, POST, the policy's defaults), "proto" (corsgate's
proto options, idempotency_level) or "config" (flags and config keys such as
allow-header, and the config's services: list). It is the JSON that
GET /debug/policy serves on corsgate serve's --metrics-listen.

The procedures come from the same sources as corsgate explain: the routing
table of a --config with backends, else the services of --config, the
descriptors of --descriptors, the server reflection of --backend, or the
procedures linked into corsgate (the greet example).`,
		Example: `  corsgate policy --config corsgate.yaml
  corsgate policy --descriptors image.binpb --allow-origin https://app.example.com
  corsgate policy --backend 127.0.0.1:9090 --allow-origin https://app.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPolicy(cmd.Context(), cmd.Flags(), &f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.descriptors, "descriptors", "", "buf image or FileDescriptorSet (binary) with the services")
	fs.StringVar(&f.configPath, "config", "", "gateway config file (YAML): its services, backends, routes and CORS keys")
	fs.StringVar(&f.backend, "backend", "", `gRPC backend to ask through server reflection ("host:port" or an http:// or https:// URL)`)
	fs.DurationVar(&f.timeout, "timeout", defaultExplainTimeout, "how long to wait for reflection")
	f.cors.Register(fs)
	return cmd
}

func runPolicy(ctx context.Context, fs *pflag.FlagSet, f *explainFlags, stdout, stderr io.Writer) error {
	file, err := loadCommandConfig(fs, f.configPath)
	if err != nil {
		return err
	}
	if f.timeout <= 0 {
		return cliflags.Usagef("--timeout %v: must be positive", f.timeout)
	}
	log, err := cliflags.NewLogger(f.cors.LogLevel, stderr)
	if err != nil {
		return err
	}
	var dump gateway.PolicyDump
	if file != nil && file.Has("backends") {
		g, err := f.routedGateway(ctx, file, log)
		if err != nil {
			return err
		}
		dump = g.PolicyDump()
		_ = g.Close()
	} else {
		policy, err := f.cors.Policy(log)
		if err != nil {
			return err
		}
		table, _, err := f.table(ctx, file, policy, log)
		if err != nil {
			return err
		}
		rules := interceptor.SourceProto
		if file != nil && file.Services != nil {
			rules = interceptor.SourceConfig
		}
		d := policy.Describe()
		dump = gateway.PolicyDump{Loaded: true, Routes: []gateway.RouteDump{{
			Route:      "backends." + gateway.DefaultBackendName,
			Backend:    gateway.DefaultBackendName,
			Policy:     &d,
			Procedures: policy.DescribeTable(table, rules),
		}}}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(dump)
}
