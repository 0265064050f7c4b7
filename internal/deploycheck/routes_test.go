package deploycheck

import (
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/corsgate/corsgate/internal/config"
)

const (
	goldenRoutedYAML  = repoRoot + "/cmd/protoc-gen-corsgate/testdata/golden/yaml-routes/corsgate.yaml"
	goldenRoutedEnvoy = repoRoot + "/cmd/protoc-gen-corsgate/testdata/golden/envoy-routes/envoy.yaml"
)

// TestRoutedConfigLoads checks that the plugin's routed gateway config (the
// route and backend_address parameters) is one corsgate serve accepts: it
// loads with the gateway's own config loader, with a backend per package
// and a route for each.
func TestRoutedConfigLoads(t *testing.T) {
	t.Parallel()
	f, err := config.Load(goldenRoutedYAML)
	if err != nil {
		t.Fatalf("corsgate serve would refuse the generated config: %v", err)
	}
	if len(f.Backends) != 2 || f.Backends["shop"] == nil || f.Backends["greet"] == nil {
		t.Fatalf("backends %v, want shop and greet", f.Backends)
	}
	want := map[string]string{"acme.v1.*": "shop", "greet.v1.*": "greet"}
	if len(f.Routes) != len(want) {
		t.Fatalf("%d routes, want %d", len(f.Routes), len(want))
	}
	for _, r := range f.Routes {
		if len(r.Services) != 1 || want[r.Services[0]] != r.Backend {
			t.Errorf("route %v to %s, want one of %v", r.Services, r.Backend, want)
		}
	}
}

// TestRoutedEnvoy decodes the plugin's routed Envoy bootstrap strictly and
// checks that every route names a cluster of the bootstrap, one cluster per
// backend.
func TestRoutedEnvoy(t *testing.T) {
	t.Parallel()
	boot, hcm := loadEnvoyFile(t, goldenRoutedEnvoy)
	var clusters []string
	for _, c := range boot.GetStaticResources().GetClusters() {
		clusters = append(clusters, c.GetName())
		if c.GetType() != clusterv3.Cluster_STATIC && c.GetType() != clusterv3.Cluster_STRICT_DNS && c.GetType() != clusterv3.Cluster_LOGICAL_DNS {
			t.Errorf("cluster %s has type %v", c.GetName(), c.GetType())
		}
	}
	slices.Sort(clusters)
	if want := []string{"greet", "shop"}; !slices.Equal(clusters, want) {
		t.Fatalf("clusters %v, want %v", clusters, want)
	}
	used := map[string]int{}
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			name := r.GetRoute().GetCluster()
			if name == "" {
				continue
			}
			if !slices.Contains(clusters, name) {
				t.Errorf("route %v names cluster %q, which the bootstrap lacks", r.GetMatch(), name)
			}
			used[name]++
		}
	}
	for _, c := range clusters {
		if used[c] == 0 {
			t.Errorf("cluster %s has no route", c)
		}
	}
}
