// Package deploycheck holds no code, only tests: it checks the deployment
// files corsgate generates and ships against the real types of the systems
// that read them, so that a file which loads in a test also loads in
// production.
//
// For Envoy: the committed example/envoy/envoy.yaml, the plugin's
// golden Envoy config, and the outputs of protoc-gen-corsgate run through buf
// with a range of parameters are decoded strictly (unknown fields rejected)
// into go-control-plane's Bootstrap, checked with Envoy's validation rules,
// and compared route by route with the interceptor's answers.
//
// The Kubernetes manifests of deploy/kubernetes are decoded as the API
// server decodes them (k8s.io/api types, unknown and duplicate fields
// refused, field names case-sensitive) and checked against each other, the
// config loader, the flags of the built corsgate serve and the Containerfile:
// probes on /healthz at the listen port, the metrics port, the termination
// grace against shutdown-grace and the preStop sleep, the security context,
// the config mounted as a directory, selectors, and the kustomization.
//
// It is a module of its own so that go-control-plane, the Kubernetes API
// types and the other readers' types stay out of the root go.mod, which
// every importer of corsgate inherits. Run its tests from this directory:
//
//	GOWORK=off go test ./...
//
// The tests use the buf the repository pins (run npm ci at the repository
// root) and build protoc-gen-corsgate and corsgate with the go command.
package deploycheck
