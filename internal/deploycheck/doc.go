// Package deploycheck holds no code, only tests: it checks the deployment
// files corsgate generates against the real types of the systems that read
// them, so that a file which loads in a test also loads in production.
//
// Today that is Envoy: the committed example/envoy/envoy.yaml, the plugin's
// golden Envoy config, and the outputs of protoc-gen-corsgate run through buf
// with a range of parameters are decoded strictly (unknown fields rejected)
// into go-control-plane's Bootstrap, checked with Envoy's validation rules,
// and compared route by route with the interceptor's answers. Kubernetes
// manifests will join later.
//
// It is a module of its own so that go-control-plane and the other readers'
// types stay out of the root go.mod, which every importer of corsgate
// inherits. Run its tests from this directory:
//
//	GOWORK=off go test ./...
//
// The tests use the buf the repository pins (run npm ci at the repository
// root) and build protoc-gen-corsgate with the go command.
package deploycheck
