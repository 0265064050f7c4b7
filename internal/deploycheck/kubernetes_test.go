package deploycheck

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/corsgate/corsgate/internal/config"
)

const (
	kubeDir       = repoRoot + "/deploy/kubernetes"
	containerfile = repoRoot + "/Containerfile"
	// configKey is the ConfigMap key, and so the file name, of the config.
	configKey = "corsgate.yaml"
	// serveDrain is the time corsgate serve gives canceled calls to write
	// their status after the shutdown grace (serveDrainTimeout).
	serveDrain = time.Second
	// nonRoot is the numeric user and group of the image.
	nonRoot = 65532
)

// kubeFiles are the manifests of deploy/kubernetes and the kind each holds.
var kubeFiles = map[string]schema.GroupVersionKind{
	"configmap.yaml":  corev1.SchemeGroupVersion.WithKind("ConfigMap"),
	"deployment.yaml": appsv1.SchemeGroupVersion.WithKind("Deployment"),
	"service.yaml":    corev1.SchemeGroupVersion.WithKind("Service"),
	"hpa.yaml":        autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"),
	"pdb.yaml":        policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"),
}

// kustomization is the part of kustomize's Kustomization these files use;
// any other field fails the strict decode.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// kube is deploy/kubernetes, decoded.
type kube struct {
	configMap     *corev1.ConfigMap
	deployment    *appsv1.Deployment
	service       *corev1.Service
	hpa           *autoscalingv2.HorizontalPodAutoscaler
	pdb           *policyv1.PodDisruptionBudget
	kustomization *kustomization
	objects       map[string]metav1.Object // by file
}

// decodeManifest decodes data (the file name) as the API server reads a
// request body: into the type registered for its apiVersion and kind, with
// unknown and duplicate fields an error and field names case-sensitive.
func decodeManifest(tb testing.TB, name string, data []byte) runtime.Object {
	tb.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			tb.Fatal(err)
		}
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	obj, gvk, err := decoder.Decode(data, nil, nil)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	if want := kubeFiles[name]; *gvk != want {
		tb.Fatalf("%s holds %s, want %s", name, gvk, want)
	}
	return obj
}

// decodeKustomization decodes data strictly into [kustomization] and checks
// that nothing was matched case-insensitively.
func decodeKustomization(tb testing.TB, data []byte) *kustomization {
	tb.Helper()
	k := &kustomization{}
	if err := yaml.UnmarshalStrict(data, k); err != nil {
		tb.Fatalf("kustomization.yaml: %v", err)
	}
	var orig, round any
	if err := yaml.Unmarshal(data, &orig); err != nil {
		tb.Fatal(err)
	}
	out, _ := json.Marshal(k)
	if err := json.Unmarshal(out, &round); err != nil {
		tb.Fatal(err)
	}
	if !reflect.DeepEqual(orig, round) {
		tb.Fatalf("kustomization.yaml reads as %s", out)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		tb.Fatalf("kustomization.yaml is %s %s, want kustomize.config.k8s.io/v1beta1 Kustomization", k.APIVersion, k.Kind)
	}
	return k
}

func loadKube(tb testing.TB) *kube {
	tb.Helper()
	k := &kube{objects: map[string]metav1.Object{}}
	for name := range kubeFiles {
		data, err := os.ReadFile(filepath.Join(kubeDir, name))
		if err != nil {
			tb.Fatal(err)
		}
		switch obj := decodeManifest(tb, name, data).(type) {
		case *corev1.ConfigMap:
			k.configMap = obj
			k.objects[name] = obj
		case *appsv1.Deployment:
			k.deployment = obj
			k.objects[name] = obj
		case *corev1.Service:
			k.service = obj
			k.objects[name] = obj
		case *autoscalingv2.HorizontalPodAutoscaler:
			k.hpa = obj
			k.objects[name] = obj
		case *policyv1.PodDisruptionBudget:
			k.pdb = obj
			k.objects[name] = obj
		default:
			tb.Fatalf("%s: unexpected %T", name, obj)
		}
	}
	data, err := os.ReadFile(filepath.Join(kubeDir, "kustomization.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	k.kustomization = decodeKustomization(tb, data)
	return k
}

// gateway returns the Deployment's one container.
func (k *kube) gateway(tb testing.TB) *corev1.Container {
	tb.Helper()
	if n := len(k.deployment.Spec.Template.Spec.Containers); n != 1 {
		tb.Fatalf("deployment.yaml: %d containers, want 1", n)
	}
	return &k.deployment.Spec.Template.Spec.Containers[0]
}

// serveFlags is the flags of `corsgate serve --help`: whether each takes a
// value.
type serveFlags map[string]bool

var helpFlag = regexp.MustCompile(`^\s+(?:-[a-z], )?--([a-z0-9-]+)(?: ([a-z]+))?\s{2,}`)

// buildServeFlags builds ./cmd/corsgate into dir and reads its serve flags.
func buildServeFlags(tb testing.TB, dir string) serveFlags {
	tb.Helper()
	bin := filepath.Join(dir, "corsgate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/corsgate")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build ./cmd/corsgate: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "serve", "--help").Output()
	if err != nil {
		tb.Fatalf("corsgate serve --help: %v", err)
	}
	flags := serveFlags{}
	for line := range strings.Lines(string(out)) {
		if m := helpFlag.FindStringSubmatch(line); m != nil {
			flags[m[1]] = m[2] != ""
		}
	}
	for _, name := range []string{"config", "listen", "metrics-listen", "shutdown-grace"} {
		if _, ok := flags[name]; !ok {
			tb.Fatalf("corsgate serve --help lists no --%s; read %d flags from:\n%s", name, len(flags), out)
		}
	}
	return flags
}

// parseArgs parses a container's args as `corsgate serve` would and returns
// the values by flag name.
func parseArgs(flags serveFlags, args []string) (map[string][]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	if args[0] != "serve" {
		return nil, fmt.Errorf("args %q do not start with serve", args)
	}
	values := map[string][]string{}
	for i := 1; i < len(args); i++ {
		arg := args[i]
		name, value, hasValue := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if !strings.HasPrefix(arg, "--") || name == "" {
			return nil, fmt.Errorf("arg %q is not a --flag (corsgate serve takes no arguments)", arg)
		}
		takesValue, ok := flags[name]
		if !ok {
			return nil, fmt.Errorf("--%s is not a flag of corsgate serve", name)
		}
		if takesValue && !hasValue {
			if i++; i == len(args) {
				return nil, fmt.Errorf("--%s needs a value", name)
			}
			value = args[i]
		}
		values[name] = append(values[name], value)
	}
	return values, nil
}

// settings are the effective serve settings: the ConfigMap's file, with the
// container's args winning.
type settings struct {
	file          *config.File
	configPath    string
	listen        string
	metricsListen string
	shutdownGrace time.Duration
}

func (k *kube) settings(tb testing.TB, flags serveFlags) settings {
	tb.Helper()
	c := k.gateway(tb)
	args, err := parseArgs(flags, c.Args)
	if err != nil {
		tb.Fatalf("deployment.yaml: %v", err)
	}
	s := settings{configPath: last(args["config"])}
	if s.configPath == "" {
		tb.Fatal("deployment.yaml: the args give no --config: the ConfigMap would not be read")
	}
	data, ok := k.configMap.Data[configKey]
	if !ok {
		tb.Fatalf("configmap.yaml has no %s", configKey)
	}
	s.file, err = config.Parse([]byte(data))
	if err != nil {
		tb.Fatalf("configmap.yaml %s: %v", configKey, err)
	}
	s.listen = cmp.Or(last(args["listen"]), s.file.Listen)
	s.metricsListen = cmp.Or(last(args["metrics-listen"]), s.file.MetricsListen)
	if v := last(args["shutdown-grace"]); v != "" {
		if s.shutdownGrace, err = time.ParseDuration(v); err != nil {
			tb.Fatalf("deployment.yaml: --shutdown-grace: %v", err)
		}
	} else if s.file.Has("shutdown-grace") {
		s.shutdownGrace = time.Duration(s.file.ShutdownGrace)
	} else {
		tb.Fatal("shutdown-grace is set neither in the ConfigMap nor in the args: terminationGracePeriodSeconds must be checked against it")
	}
	return s
}

func last(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// listenPort returns the port of a listen address, which must be on every
// interface: a pod's probes and Service reach it on the pod IP.
func listenPort(tb testing.TB, key, addr string) int32 {
	tb.Helper()
	if addr == "" {
		tb.Fatalf("%s is not set: the default listens on loopback only", key)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatalf("%s %q: %v", key, addr, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		tb.Fatalf("%s %q: not reachable from outside the pod; listen on 0.0.0.0", key, addr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		tb.Fatalf("%s %q: bad port", key, addr)
	}
	return int32(n)
}

// containerPort returns the port of c that target names, by name or number.
func containerPort(c *corev1.Container, target intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, p := range c.Ports {
		if target.Type == intstr.String && p.Name == target.StrVal || target.Type == intstr.Int && p.ContainerPort == target.IntVal {
			return p, true
		}
	}
	return corev1.ContainerPort{}, false
}

// portNumbered returns the named port of c with number n.
func portNumbered(tb testing.TB, c *corev1.Container, n int32) corev1.ContainerPort {
	tb.Helper()
	for _, p := range c.Ports {
		if p.ContainerPort == n {
			if p.Name == "" {
				tb.Fatalf("container port %d has no name", n)
			}
			return p
		}
	}
	tb.Fatalf("no container port %d", n)
	return corev1.ContainerPort{}
}

// TestKubernetes decodes deploy/kubernetes strictly into the Kubernetes API
// types and checks that the files agree with each other, with the config
// loader, with the binary's flags and with the Containerfile.
func TestKubernetes(t *testing.T) {
	t.Parallel()
	k := loadKube(t)
	flags := buildServeFlags(t, t.TempDir())
	s := k.settings(t, flags)
	c := k.gateway(t)
	pod := &k.deployment.Spec.Template

	t.Run("config", func(t *testing.T) {
		t.Parallel()
		if s.file.Backend == "" {
			t.Errorf("configmap.yaml: no backend (corsgate serve requires one)")
		}
		if len(s.file.AllowOrigin) == 0 {
			t.Errorf("configmap.yaml: no allow-origin: browsers of no origin could call")
		}
		if len(k.configMap.Data) != 1 || len(k.configMap.BinaryData) != 0 {
			t.Errorf("configmap.yaml holds %d keys, want %s alone", len(k.configMap.Data)+len(k.configMap.BinaryData), configKey)
		}
	})

	t.Run("config mount", func(t *testing.T) {
		t.Parallel()
		dir, file := path.Split(s.configPath)
		if file != configKey {
			t.Errorf("--config %s: the ConfigMap's key is %s", s.configPath, configKey)
		}
		var mounts []corev1.VolumeMount
		for _, m := range c.VolumeMounts {
			if strings.TrimSuffix(m.MountPath, "/")+"/" == dir {
				mounts = append(mounts, m)
			}
		}
		if len(mounts) != 1 {
			t.Fatalf("%d volume mounts at %s, want 1", len(mounts), dir)
		}
		m := mounts[0]
		if m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("the config is mounted with a subPath: ConfigMap updates would never reach the file")
		}
		if !m.ReadOnly {
			t.Errorf("the config mount is writable")
		}
		i := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 {
			t.Fatalf("volume %s is not in the pod", m.Name)
		}
		cm := pod.Spec.Volumes[i].ConfigMap
		if cm == nil || cm.Name != k.configMap.Name {
			t.Fatalf("volume %s is not the ConfigMap %s", m.Name, k.configMap.Name)
		}
		if len(cm.Items) > 0 && !slices.ContainsFunc(cm.Items, func(p corev1.KeyToPath) bool { return p.Key == configKey && p.Path == configKey }) {
			t.Errorf("volume %s's items do not put %s at %s", m.Name, configKey, configKey)
		}
		if cm.Optional != nil && *cm.Optional {
			t.Errorf("the ConfigMap volume is optional: the gateway would start without its config")
		}
	})

	t.Run("probes", func(t *testing.T) {
		t.Parallel()
		listen := portNumbered(t, c, listenPort(t, "listen", s.listen))
		// Readiness follows the backend through /healthz; liveness must not
		// (a backend outage would restart every gateway): a TCP check of
		// the same port.
		if probe := c.ReadinessProbe; probe == nil || probe.HTTPGet == nil {
			t.Errorf("readinessProbe is not an HTTP GET")
		} else {
			if probe.HTTPGet.Path != "/healthz" {
				t.Errorf("readinessProbe GET %s, want /healthz", probe.HTTPGet.Path)
			}
			if p, ok := containerPort(c, probe.HTTPGet.Port); !ok || p.ContainerPort != listen.ContainerPort {
				t.Errorf("readinessProbe port %s is not the listen port %d (%s)", probe.HTTPGet.Port.String(), listen.ContainerPort, listen.Name)
			}
			if probe.HTTPGet.Scheme != "" && probe.HTTPGet.Scheme != corev1.URISchemeHTTP && s.file.TLSCert == "" {
				t.Errorf("readinessProbe scheme %s, but the gateway serves without TLS", probe.HTTPGet.Scheme)
			}
			// /healthz waits up to 3s for the backend's answer.
			if probe.TimeoutSeconds <= 3 {
				t.Errorf("readinessProbe timeoutSeconds %d: /healthz may take 3s", probe.TimeoutSeconds)
			}
		}
		if probe := c.LivenessProbe; probe == nil || probe.TCPSocket == nil {
			t.Errorf("livenessProbe is not a TCP check: an HTTP check of /healthz restarts the gateway whenever its backend is down")
		} else if p, ok := containerPort(c, probe.TCPSocket.Port); !ok || p.ContainerPort != listen.ContainerPort {
			t.Errorf("livenessProbe port %s is not the listen port %d (%s)", probe.TCPSocket.Port.String(), listen.ContainerPort, listen.Name)
		}
		if c.StartupProbe != nil && c.StartupProbe.Exec != nil {
			t.Errorf("startupProbe runs a command: the image has no shell")
		}
	})

	t.Run("metrics port", func(t *testing.T) {
		t.Parallel()
		p := portNumbered(t, c, listenPort(t, "metrics-listen", s.metricsListen))
		if p.Name != "metrics" {
			t.Errorf("metrics-listen's container port is named %q, want metrics", p.Name)
		}
		if p.ContainerPort == listenPort(t, "listen", s.listen) {
			t.Errorf("listen and metrics-listen share port %d", p.ContainerPort)
		}
	})

	t.Run("args", func(t *testing.T) {
		t.Parallel()
		if len(c.Command) > 0 && !slices.Equal(c.Command, []string{"/usr/local/bin/corsgate"}) {
			t.Errorf("command %q replaces the image's entrypoint", c.Command)
		}
		// The flags themselves were parsed against serve --help above.
		if len(c.Args) == 0 {
			t.Errorf("no args: the image's CMD would run, and this test could not check its flags")
		}
	})

	t.Run("termination", func(t *testing.T) {
		t.Parallel()
		pre := c.Lifecycle
		if pre == nil || pre.PreStop == nil || pre.PreStop.Sleep == nil {
			t.Fatal("no preStop sleep: endpoints would still send calls after SIGTERM")
		}
		if pre.PreStop.Exec != nil || pre.PreStop.HTTPGet != nil {
			t.Errorf("preStop does more than sleep")
		}
		sleep := time.Duration(pre.PreStop.Sleep.Seconds) * time.Second
		if sleep < 2*time.Second {
			t.Errorf("preStop sleeps %v: too short for endpoints to drain", sleep)
		}
		grace := pod.Spec.TerminationGracePeriodSeconds
		need := sleep + s.shutdownGrace + serveDrain
		if grace == nil || time.Duration(*grace)*time.Second <= need {
			t.Errorf("terminationGracePeriodSeconds %v, want more than preStop %v + shutdown-grace %v + drain %v", ptrString(grace), sleep, s.shutdownGrace, serveDrain)
		}
	})

	t.Run("security", func(t *testing.T) {
		t.Parallel()
		sc, psc := c.SecurityContext, pod.Spec.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		runAsNonRoot := cmpPtr(sc.RunAsNonRoot, psc.RunAsNonRoot)
		runAsUser := cmpPtr(sc.RunAsUser, psc.RunAsUser)
		runAsGroup := cmpPtr(sc.RunAsGroup, psc.RunAsGroup)
		seccomp := cmpPtr(sc.SeccompProfile, psc.SeccompProfile)
		if runAsNonRoot == nil || !*runAsNonRoot {
			t.Errorf("runAsNonRoot is not true")
		}
		if runAsUser == nil || *runAsUser != nonRoot {
			t.Errorf("runAsUser %s, want %d", ptrString(runAsUser), nonRoot)
		}
		if runAsGroup != nil && *runAsGroup != nonRoot {
			t.Errorf("runAsGroup %d, want %d", *runAsGroup, nonRoot)
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("seccompProfile %v, want RuntimeDefault", seccomp)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("privileged")
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("capabilities %+v, want drop [ALL] and no add", sc.Capabilities)
		}
		if pod.Spec.HostNetwork || pod.Spec.HostPID || pod.Spec.HostIPC {
			t.Errorf("the pod shares a host namespace")
		}
	})

	t.Run("resources", func(t *testing.T) {
		t.Parallel()
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, okReq := c.Resources.Requests[name]
			limit, okLimit := c.Resources.Limits[name]
			if !okReq || !okLimit || req.IsZero() {
				t.Errorf("%s: request %v, limit %v: want both", name, req.String(), limit.String())
				continue
			}
			if req.Cmp(limit) > 0 {
				t.Errorf("%s: request %v above limit %v", name, req.String(), limit.String())
			}
		}
	})

	t.Run("labels", func(t *testing.T) {
		t.Parallel()
		want := k.deployment.Labels
		for _, key := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"} {
			if want[key] == "" {
				t.Errorf("deployment.yaml has no label %s", key)
			}
		}
		for name, obj := range k.objects {
			if !maps.Equal(obj.GetLabels(), want) {
				t.Errorf("%s labels %v, want %v", name, obj.GetLabels(), want)
			}
			if obj.GetName() != k.deployment.Name || obj.GetNamespace() != k.deployment.Namespace {
				t.Errorf("%s is %s/%s, want %s/%s", name, obj.GetNamespace(), obj.GetName(), k.deployment.Namespace, k.deployment.Name)
			}
		}
		if !maps.Equal(pod.Labels, want) {
			t.Errorf("pod template labels %v, want %v", pod.Labels, want)
		}
		if !selects(t, k.deployment.Spec.Selector, pod.Labels) {
			t.Errorf("the Deployment's selector %v does not select its pods", k.deployment.Spec.Selector)
		}
	})

	t.Run("service", func(t *testing.T) {
		t.Parallel()
		if len(k.service.Spec.Selector) == 0 || !labels.SelectorFromSet(k.service.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			t.Errorf("the Service's selector %v does not select the pods", k.service.Spec.Selector)
		}
		var names []string
		for _, p := range k.service.Spec.Ports {
			names = append(names, p.Name)
			if p.TargetPort.Type != intstr.String {
				t.Errorf("Service port %s targets %s: name the container port instead", p.Name, p.TargetPort.String())
			}
			if _, ok := containerPort(c, p.TargetPort); !ok {
				t.Errorf("Service port %s targets %s, which is no container port", p.Name, p.TargetPort.String())
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"http", "metrics"}) {
			t.Errorf("Service ports %v, want http and metrics", names)
		}
	})

	t.Run("autoscaler", func(t *testing.T) {
		t.Parallel()
		ref := k.hpa.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != k.deployment.Name {
			t.Errorf("the HPA scales %s %s %s, want apps/v1 Deployment %s", ref.APIVersion, ref.Kind, ref.Name, k.deployment.Name)
		}
		if k.deployment.Spec.Replicas != nil {
			t.Errorf("the Deployment sets replicas %d: each apply would undo the HPA", *k.deployment.Spec.Replicas)
		}
		minReplicas := int32(1)
		if k.hpa.Spec.MinReplicas != nil {
			minReplicas = *k.hpa.Spec.MinReplicas
		}
		if minReplicas < 2 || k.hpa.Spec.MaxReplicas < minReplicas {
			t.Errorf("HPA replicas %d to %d, want at least 2", minReplicas, k.hpa.Spec.MaxReplicas)
		}
		cpu := slices.ContainsFunc(k.hpa.Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
			return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
				m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil
		})
		if !cpu {
			t.Errorf("the HPA does not scale on CPU utilization")
		}
		if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
			t.Errorf("no CPU request: the HPA's utilization has nothing to divide by")
		}
		// A budget that allows no disruption at the HPA's minimum blocks
		// node drains.
		if mu := k.pdb.Spec.MaxUnavailable; mu != nil {
			if mu.Type != intstr.Int || mu.IntVal < 1 || mu.IntVal >= minReplicas {
				t.Errorf("PDB maxUnavailable %s with HPA minReplicas %d: want 1 to %d", mu.String(), minReplicas, minReplicas-1)
			}
		} else if ma := k.pdb.Spec.MinAvailable; ma == nil || ma.Type != intstr.Int || ma.IntVal >= minReplicas {
			t.Errorf("PDB minAvailable %v with HPA minReplicas %d blocks every drain", ma, minReplicas)
		}
	})

	t.Run("disruption budget", func(t *testing.T) {
		t.Parallel()
		if !selects(t, k.pdb.Spec.Selector, pod.Labels) {
			t.Errorf("the PDB's selector %v does not select the pods", k.pdb.Spec.Selector)
		}
		if !maps.Equal(k.pdb.Spec.Selector.MatchLabels, k.deployment.Spec.Selector.MatchLabels) {
			t.Errorf("the PDB's selector %v is not the Deployment's %v", k.pdb.Spec.Selector, k.deployment.Spec.Selector)
		}
	})

	t.Run("kustomization", func(t *testing.T) {
		t.Parallel()
		entries, err := os.ReadDir(kubeDir)
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, e := range entries {
			if e.Name() != "kustomization.yaml" {
				files = append(files, e.Name())
			}
		}
		listed := slices.Sorted(slices.Values(k.kustomization.Resources))
		if !slices.Equal(listed, files) {
			t.Errorf("kustomization.yaml lists %v; the directory holds %v", listed, files)
		}
		var known []string
		for name := range kubeFiles {
			known = append(known, name)
		}
		slices.Sort(known)
		if !slices.Equal(files, known) {
			t.Errorf("deploy/kubernetes holds %v; this test decodes %v", files, known)
		}
	})

	t.Run("Containerfile", func(t *testing.T) {
		t.Parallel()
		inst := readContainerfile(t)
		if got, want := inst["USER"], []string{fmt.Sprintf("%d:%d", nonRoot, nonRoot)}; !slices.Equal(got, want) {
			t.Errorf("Containerfile USER %q, want %q", got, want)
		}
		var exposed []string
		for _, e := range inst["EXPOSE"] {
			exposed = append(exposed, strings.Fields(e)...)
		}
		var ports []string
		for _, p := range c.Ports {
			ports = append(ports, fmt.Sprintf("%d/%s", p.ContainerPort, strings.ToLower(string(p.Protocol))))
		}
		if slices.Sort(exposed); !slices.Equal(exposed, slices.Sorted(slices.Values(ports))) {
			t.Errorf("Containerfile EXPOSE %v, container ports %v", exposed, ports)
		}
		var entrypoint, cmd []string
		if err := json.Unmarshal([]byte(last(inst["ENTRYPOINT"])), &entrypoint); err != nil || !slices.Equal(entrypoint, []string{"/usr/local/bin/corsgate"}) {
			t.Errorf("Containerfile ENTRYPOINT %q, want [\"/usr/local/bin/corsgate\"] (%v)", inst["ENTRYPOINT"], err)
		}
		if err := json.Unmarshal([]byte(last(inst["CMD"])), &cmd); err != nil {
			t.Errorf("Containerfile CMD %q: %v", inst["CMD"], err)
		}
		if _, err := parseArgs(flags, cmd); err != nil {
			t.Errorf("Containerfile CMD: %v", err)
		}
		if len(cmd) > 2 && cmd[len(cmd)-1] != s.configPath {
			t.Errorf("Containerfile CMD reads %s, the Deployment mounts %s", cmd[len(cmd)-1], s.configPath)
		}
	})
}

// readContainerfile returns the Containerfile's instructions by keyword,
// continuation lines joined.
func readContainerfile(tb testing.TB) map[string][]string {
	tb.Helper()
	data, err := os.ReadFile(containerfile)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]string{}
	var line string
	for l := range strings.Lines(string(data)) {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") || l == "" && line == "" {
			continue
		}
		if cont, ok := strings.CutSuffix(l, `\`); ok {
			line += cont + " "
			continue
		}
		line += l
		keyword, rest, _ := strings.Cut(line, " ")
		out[strings.ToUpper(keyword)] = append(out[strings.ToUpper(keyword)], strings.TrimSpace(rest))
		line = ""
	}
	return out
}

func selects(tb testing.TB, selector *metav1.LabelSelector, set map[string]string) bool {
	tb.Helper()
	if selector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		tb.Errorf("selector %v: %v", selector, err)
		return false
	}
	return !sel.Empty() && sel.Matches(labels.Set(set))
}

func cmpPtr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}
