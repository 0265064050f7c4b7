package main

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/config"
)

// TestRoutedConfigLoads checks that the gateway config written with route
// parameters, as YAML and as JSON, is one internal/config's loader accepts,
// with a backend per backend_address and a package route per route.
func TestRoutedConfigLoads(t *testing.T) {
	t.Parallel()
	protos := compileProtos(t, []string{"testdata/protos", "../../proto"}, routedFiles)
	for _, tc := range []struct{ format, file string }{
		{format: formatYAML, file: configYAMLName},
		{format: formatJSON, file: configJSONName},
	} {
		t.Run(tc.format, func(t *testing.T) {
			t.Parallel()
			parameter := "format=" + tc.format + ",allow_origin=https://app.example.com," + routedParameter
			files := responseFiles(t, runRequest(newRequest(t, protos, routedFiles, parameter, false)))
			f, err := config.Parse([]byte(files[tc.file]))
			if err != nil {
				t.Fatalf("internal/config refuses %s: %v\n%s", tc.file, err, files[tc.file])
			}
			if f.Has("backend") {
				t.Errorf("backend set next to backends")
			}
			addrs := make(map[string][]string)
			for name, b := range f.Backends {
				addrs[name] = b.Addresses
			}
			wantAddrs := map[string][]string{"shop": {"shop.internal:9090"}, "greet": {"127.0.0.1:9091"}}
			if !maps.EqualFunc(addrs, wantAddrs, slices.Equal) {
				t.Errorf("backends %v, want %v", addrs, wantAddrs)
			}
			var got []string
			for _, r := range f.Routes {
				got = append(got, strings.Join(r.Services, "|")+"→"+r.Backend)
			}
			if want := []string{"acme.v1.*→shop", "greet.v1.*→greet"}; !slices.Equal(got, want) {
				t.Errorf("routes %v, want %v", got, want)
			}
			if len(f.Services) != 6 {
				t.Errorf("%d services, want the 6 of acme.v1 and greet.v1", len(f.Services))
			}
		})
	}
}

// TestRoutedConfigInnerPackage checks that a routed package with another
// routed package inside it lists its services by name, since "acme.v1.*"
// would claim acme.v1.admin's services too and internal/config refuses
// routes that overlap.
func TestRoutedConfigInnerPackage(t *testing.T) {
	t.Parallel()
	p := newParams()
	for _, v := range []string{"route=acme.v1=shop", "route=acme.v1.admin=admin", "backend_address=shop=s:1", "backend_address=admin=a:1"} {
		name, value, _ := strings.Cut(v, "=")
		if err := p.set(name, value); err != nil {
			t.Fatal(err)
		}
	}
	services := []interceptor.Service{{Name: "acme.v1.ShopService"}, {Name: "acme.v1.admin.AdminService"}, {Name: "acme.v1.CartService"}}
	backends, routes := p.configRouting(services)
	want := []configRoute{
		{Services: []string{"acme.v1.ShopService", "acme.v1.CartService"}, Backend: "shop"},
		{Services: []string{"acme.v1.admin.*"}, Backend: "admin"},
	}
	if !slices.EqualFunc(routes, want, func(a, b configRoute) bool { return a.Backend == b.Backend && slices.Equal(a.Services, b.Services) }) {
		t.Errorf("routes %v, want %v", routes, want)
	}
	doc, err := json.Marshal(map[string]any{"allow-origin": []string{"https://app.example.com"}, "backends": backends, "routes": routes})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse(doc); err != nil {
		t.Errorf("internal/config refuses the routes: %v\n%s", err, doc)
	}
}

// TestRouteParameterErrors checks the errors of route and backend_address:
// each names the parameter and says what to give instead, and nothing is
// written.
func TestRouteParameterErrors(t *testing.T) {
	t.Parallel()
	protos := compileProtos(t, []string{"testdata/protos", "../../proto"}, routedFiles)
	const both = "route=acme.v1=shop,route=greet.v1=greet,backend_address=shop=s:1,backend_address=greet=g:1"
	tests := []struct {
		name      string
		parameter string
		want      []string
	}{
		{name: "bad package", parameter: "route=acme..v1=shop", want: []string{"parameter route", `"acme..v1" is not a proto package name`}},
		{name: "bad backend name", parameter: "route=acme.v1=sh/op", want: []string{"parameter route", `"sh/op" is not a backend name`}},
		{name: "empty backend name", parameter: "route=acme.v1=", want: []string{"parameter route", `"" is not a backend name`}},
		{name: "route without address", parameter: "route=acme.v1=shop,route=greet.v1=greet,backend_address=shop=s:1", want: []string{"parameter route: backend greet has no address", "backend_address=greet=HOST:PORT"}},
		{name: "address syntax", parameter: both + ",backend_address=other", want: []string{"parameter backend_address", "BACKEND=HOST:PORT"}},
		{name: "address not host:port", parameter: "route=acme.v1=shop,backend_address=shop=shop.internal", want: []string{"parameter backend_address", "backend shop", `"shop.internal"`}},
		{name: "address without host", parameter: "route=acme.v1=shop,backend_address=shop=:9090", want: []string{"parameter backend_address", "no host"}},
		{name: "address twice", parameter: both + ",backend_address=shop=t:1", want: []string{"parameter backend_address", "backend shop given twice", "one address per backend"}},
		{name: "address without any route", parameter: "backend_address=shop=s:1", want: []string{"parameter backend_address", "no route parameter names backend shop", "route=PACKAGE=shop"}},
		{name: "unknown package", parameter: both + ",route=billing.v1=shop", want: []string{"parameter route: package billing.v1 has no service", "acme.v1, greet.v1"}},
		{name: "package without route", parameter: "route=acme.v1=shop,backend_address=shop=s:1", want: []string{`package "greet.v1"`, "has no route parameter", "route=greet.v1=BACKEND"}},
	}
	for _, tc := range tests {
		for _, format := range []string{"format=yaml", "format=envoy,allow_origin=https://a.example.com"} {
			t.Run(tc.name+"/"+strings.SplitN(format, ",", 2)[0], func(t *testing.T) {
				t.Parallel()
				parameter := format + "," + tc.parameter
				resp := runRequest(newRequest(t, protos, routedFiles, parameter, false))
				if resp.Error == nil {
					t.Fatalf("parameter %q: no error; files %d", parameter, len(resp.GetFile()))
				}
				for _, w := range tc.want {
					if !strings.Contains(resp.GetError(), w) {
						t.Errorf("parameter %q: error %q does not contain %q", parameter, resp.GetError(), w)
					}
				}
				if len(resp.GetFile()) != 0 {
					t.Errorf("parameter %q: %d files written despite the error", parameter, len(resp.GetFile()))
				}
			})
		}
	}
}
