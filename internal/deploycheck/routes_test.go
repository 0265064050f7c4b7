package deploycheck

import (
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/internal/config"
)

// The plugin's golden outputs with route and backend_address parameters
// (see goldenCases in cmd/protoc-gen-corsgate/golden_test.go).
const (
	goldenRoutedYAML  = repoRoot + "/cmd/protoc-gen-corsgate/testdata/golden/yaml-routes/corsgate.yaml"
	goldenRoutedEnvoy = repoRoot + "/cmd/protoc-gen-corsgate/testdata/golden/envoy-routes/envoy.yaml"
)

// routedFiles are two proto packages, each sent to a backend of its own by
// routedOpts.
var (
	routedFiles = append(slices.Clone(acmeFiles), greetFiles...)
	routedOpts  = []string{
		"route=acme.v1=shop", "route=greet.v1=greet",
		"backend_address=shop=shop.internal:9090", "backend_address=greet=127.0.0.1:9091",
	}
)

// routedCluster is what a cluster of the routed bootstrap must be.
type routedCluster struct {
	discovery clusterv3.Cluster_DiscoveryType
	address   string
	port      uint32
	prefix    string // of the paths routed to it
}

var wantRoutedClusters = map[string]routedCluster{
	"greet": {discovery: clusterv3.Cluster_STATIC, address: "127.0.0.1", port: 9091, prefix: "/greet.v1."},
	"shop":  {discovery: clusterv3.Cluster_STRICT_DNS, address: "shop.internal", port: 9090, prefix: "/acme.v1."},
}

// TestRoutedConfigLoads checks that the plugin's routed gateway config, the
// golden file and a buf run's, is one corsgate serve accepts: it loads with
// the gateway's own config loader, with a backend per backend_address and a
// route per package.
func TestRoutedConfigLoads(t *testing.T) {
	t.Parallel()
	out := generate(t, []string{acmeProtos, repoProtos}, routedFiles,
		append([]string{"format=yaml", "allow_origin=https://app.example.com"}, routedOpts...)...)
	tmp := t.TempDir() + "/corsgate.yaml"
	writeFile(t, tmp, string(out["corsgate.yaml"]))
	for _, path := range []string{goldenRoutedYAML, tmp} {
		f, err := config.Load(path)
		if err != nil {
			t.Fatalf("corsgate serve would refuse the generated config: %v", err)
		}
		for name, want := range wantRoutedClusters {
			b := f.Backends[name]
			if b == nil || len(b.Addresses) != 1 || !strings.HasPrefix(b.Addresses[0], want.address+":") {
				t.Errorf("%s: backend %s is %+v, want the address %s", path, name, b, want.address)
			}
		}
		if len(f.Backends) != len(wantRoutedClusters) {
			t.Errorf("%s: %d backends, want %d", path, len(f.Backends), len(wantRoutedClusters))
		}
		want := map[string]string{"acme.v1.*": "shop", "greet.v1.*": "greet"}
		if len(f.Routes) != len(want) {
			t.Errorf("%s: %d routes, want %d", path, len(f.Routes), len(want))
		}
		for _, r := range f.Routes {
			if len(r.Services) != 1 || want[r.Services[0]] != r.Backend {
				t.Errorf("%s: route %v to %s, want one of %v", path, r.Services, r.Backend, want)
			}
		}
	}
}

// TestRoutedEnvoy decodes the plugin's routed Envoy bootstrap, the golden
// file and a buf run's, strictly into go-control-plane's Bootstrap (which
// loadEnvoy validates, checking that every route's cluster exists), and
// checks one cluster per backend at its address, each procedure routed to
// its package's backend, and per-route CORS policies equal to those of the
// single-backend output for the same parameters.
func TestRoutedEnvoy(t *testing.T) {
	t.Parallel()
	// The golden case's parameters.
	cors := []string{"format=envoy", "listen=0.0.0.0:10000", "allow_origin=https://app.example.com", "allow_credentials=true", "max_age=600", "expose_header=x-debug"}
	routed := generate(t, []string{acmeProtos, repoProtos}, routedFiles, append(slices.Clone(cors), routedOpts...)...)
	single := generate(t, []string{acmeProtos, repoProtos}, routedFiles, cors...)
	_, singleHCM := loadEnvoy(t, "single envoy.yaml", single["envoy.yaml"])
	singleCORS := routeCORS(t, singleHCM)

	goldenBoot, _ := loadEnvoyFile(t, goldenRoutedEnvoy)
	boot, hcm := loadEnvoy(t, "routed envoy.yaml", routed["envoy.yaml"])
	if !proto.Equal(boot, goldenBoot) {
		t.Errorf("the buf run's routed bootstrap differs from %s", goldenRoutedEnvoy)
	}

	clusters := boot.GetStaticResources().GetClusters()
	if len(clusters) != len(wantRoutedClusters) {
		t.Errorf("%d clusters, want %d", len(clusters), len(wantRoutedClusters))
	}
	for _, c := range clusters {
		want, ok := wantRoutedClusters[c.GetName()]
		if !ok {
			t.Errorf("cluster %s is no backend", c.GetName())
			continue
		}
		eps := c.GetLoadAssignment().GetEndpoints()
		if c.GetType() != want.discovery || len(eps) != 1 || len(eps[0].GetLbEndpoints()) != 1 {
			t.Errorf("cluster %s: type %v, endpoints %v; want %v and one endpoint", c.GetName(), c.GetType(), eps, want.discovery)
			continue
		}
		sa := eps[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
		if sa.GetAddress() != want.address || sa.GetPortValue() != want.port {
			t.Errorf("cluster %s at %s:%d, want %s:%d", c.GetName(), sa.GetAddress(), sa.GetPortValue(), want.address, want.port)
		}
	}

	routedCORS := routeCORS(t, hcm)
	if len(routedCORS) != len(singleCORS) || len(routedCORS) != 15 {
		t.Errorf("%d routes, single-backend output %d, want 15 (9 of acme.v1, 6 of greet.v1)", len(routedCORS), len(singleCORS))
	}
	used := make(map[string]int)
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			path, cluster := r.GetMatch().GetPath(), r.GetRoute().GetCluster()
			used[cluster]++
			if want := wantRoutedClusters[cluster]; !strings.HasPrefix(path, want.prefix) {
				t.Errorf("route %s forwards to cluster %q, not its package's backend", path, cluster)
			}
			if !proto.Equal(routedCORS[path], singleCORS[path]) {
				t.Errorf("route %s: CORS policy %v, single-backend output %v", path, routedCORS[path], singleCORS[path])
			}
		}
	}
	for name := range wantRoutedClusters {
		if used[name] == 0 {
			t.Errorf("cluster %s has no route", name)
		}
	}
}
