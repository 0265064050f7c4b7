package main

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/corsgate/corsgate/interceptor"
)

// runRequest runs the plugin on one request, as protoc or buf would, and
// returns the response. Problems with the request or its parameters are
// reported in the response's error field, which protoc and buf print.
func runRequest(req *pluginpb.CodeGeneratorRequest) *pluginpb.CodeGeneratorResponse {
	p := newParams()
	if !wantsGo(req.GetParameter()) {
		// Only the Go format needs Go import paths: spare the other
		// formats' users the go_package options protogen insists on.
		req = proto.CloneOf(req)
		var mapped strings.Builder
		for _, f := range req.GetProtoFile() {
			fmt.Fprintf(&mapped, ",M%s=corsgate.invalid/%s", f.GetName(), path.Dir(f.GetName()))
		}
		req.Parameter = proto.String(req.GetParameter() + mapped.String())
	}
	gen, err := protogen.Options{ParamFunc: p.set}.New(req)
	if err != nil {
		return errorResponse(err)
	}
	if err := generate(gen, p); err != nil {
		gen.Error(err)
	}
	return gen.Response()
}

// wantsGo reports whether the parameter string asks for the Go format, the
// default.
func wantsGo(parameter string) bool {
	format := formatGo
	for _, kv := range strings.Split(parameter, ",") {
		if v, ok := strings.CutPrefix(kv, "format="); ok {
			format = v
		}
	}
	return format == formatGo
}

func errorResponse(err error) *pluginpb.CodeGeneratorResponse {
	return &pluginpb.CodeGeneratorResponse{
		Error:             proto.String(err.Error()),
		SupportedFeatures: proto.Uint64(supportedFeatures),
		MinimumEdition:    proto.Int32(int32(descriptorpb.Edition_EDITION_PROTO2)),
		MaximumEdition:    proto.Int32(int32(descriptorpb.Edition_EDITION_2024)),
	}
}

const supportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL |
	pluginpb.CodeGeneratorResponse_FEATURE_SUPPORTS_EDITIONS)

// generate writes the output the format parameter asks for.
func generate(gen *protogen.Plugin, p *params) error {
	gen.SupportedFeatures = supportedFeatures
	gen.SupportedEditionsMinimum = descriptorpb.Edition_EDITION_PROTO2
	gen.SupportedEditionsMaximum = descriptorpb.Edition_EDITION_2024
	if err := p.check(); err != nil {
		return err
	}
	if p.format != formatGo {
		if _, err := interceptor.New(p.policyOptions()...); err != nil {
			return fmt.Errorf("parameters: %w", err)
		}
	}

	checker := newOptionChecker(gen)
	var files []*protogen.File
	for _, f := range gen.Files {
		if f.Generate {
			checker.checkFile(f.Desc)
			files = append(files, f)
		}
	}
	if err := checker.err(); err != nil {
		return err
	}

	perFile := make([][]interceptor.Service, len(files))
	var all []interceptor.Service
	for i, f := range files {
		for _, s := range f.Services {
			svc, err := interceptor.ServiceOf(s.Desc)
			if err != nil {
				return fmt.Errorf("%s: %w", f.Desc.Path(), err)
			}
			perFile[i] = append(perFile[i], svc)
			all = append(all, svc)
		}
	}
	// One table over everything generated together refuses duplicates early.
	if _, err := interceptor.NewTable(all...); err != nil {
		return err
	}
	if err := p.checkRoutedServices(all); err != nil {
		return err
	}

	if p.format == formatGo {
		for i, f := range files {
			generateGo(gen, f, perFile[i], p)
		}
		return nil
	}
	// The aggregated outputs list services by name, whatever order buf
	// passes the files in.
	slices.SortFunc(all, func(a, b interceptor.Service) int { return strings.Compare(a.Name, b.Name) })
	var sources []string
	for _, f := range files {
		if len(f.Services) > 0 {
			sources = append(sources, f.Desc.Path())
		}
	}
	slices.Sort(sources)
	switch p.format {
	case formatYAML, formatJSON:
		return generateConfig(gen, sources, all, p)
	case formatEnvoy:
		return generateEnvoy(gen, sources, all, p)
	}
	return fmt.Errorf("unknown format %q", p.format)
}

// policyOptions are the interceptor options the deployment parameters stand
// for, so that the interceptor validates them as it would at run time.
func (p *params) policyOptions() []interceptor.Option {
	opts := []interceptor.Option{
		interceptor.WithAllowedOrigins(p.allowOrigins...),
		interceptor.WithCredentials(p.allowCredentials),
		interceptor.WithAllowedHeaders(p.allowHeaders...),
		interceptor.WithExposedHeaders(p.exposeHeaders...),
		interceptor.WithPrivateNetwork(p.privateNetwork),
		interceptor.WithStrict(p.strict),
	}
	if p.maxAgeSet {
		opts = append(opts, interceptor.WithMaxAge(p.maxAge))
	}
	return opts
}
