// Package kubernetes holds the Kubernetes manifests of deploy/kubernetes/ (applied with
// `kubectl apply -f deploy/kubernetes/`) and this test, which checks them without a
// cluster: every document decodes strictly into the real API type of its kind (a
// misspelled field is an error), and the pieces fit together: selectors, ports,
// probes, the ConfigMap's mount and its config.json, and the DNS name that
// servers.discovery resolves.
package kubernetes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/lb"
)

const (
	nameLabel     = "app.kubernetes.io/name"
	appName       = "switchyard"
	configMapName = "switchyard-config"
	dockerfile    = "../Dockerfile"
)

// doc is one YAML document of one manifest file.
type doc struct {
	where string // "file.yaml#2"
	data  []byte
	meta  metav1.TypeMeta
	obj   metav1.Object
}

// manifests is every object of deploy/kubernetes, decoded strictly.
type manifests struct {
	docs        []doc
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  []*corev1.ConfigMap
	pdbs        []*policyv1.PodDisruptionBudget
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// splitDocuments splits a YAML stream at its "---" lines, leaving out documents that
// hold only comments or blank lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, part := range docSeparator.Split(string(data), -1) {
		empty := true
		for line := range strings.SplitSeq(part, "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, []byte(part))
		}
	}
	return docs
}

// decodeStrict decodes one YAML document into out as the API server's strict field
// validation (`kubectl apply --validate=strict`) does: keys match field names case
// by case, and unknown or duplicate fields are errors. (yaml.UnmarshalStrict is not
// enough: it decodes with encoding/json, which takes "clusterIp" for "clusterIP".)
func decodeStrict(data []byte, out any) error {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(js, out)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// decode turns one document into the API type its apiVersion and kind name.
func decode(where string, data []byte) (doc, error) {
	d := doc{where: where, data: data}
	if err := yaml.Unmarshal(data, &d.meta); err != nil {
		return d, err
	}
	var err error
	switch gvk := d.meta.APIVersion + " " + d.meta.Kind; gvk {
	case "apps/v1 Deployment":
		o := new(appsv1.Deployment)
		err, d.obj = decodeStrict(data, o), o
	case "v1 Service":
		o := new(corev1.Service)
		err, d.obj = decodeStrict(data, o), o
	case "v1 ConfigMap":
		o := new(corev1.ConfigMap)
		err, d.obj = decodeStrict(data, o), o
	case "policy/v1 PodDisruptionBudget":
		o := new(policyv1.PodDisruptionBudget)
		err, d.obj = decodeStrict(data, o), o
	default:
		return d, fmt.Errorf("apiVersion %q, kind %q: not a kind these manifests use (apps/v1 Deployment, v1 Service, v1 ConfigMap, policy/v1 PodDisruptionBudget)",
			d.meta.APIVersion, d.meta.Kind)
	}
	return d, err
}

// load is every manifest of this directory, read once; a test stops at once, with
// the reasons, when some document does not decode.
func load(t *testing.T) *manifests {
	t.Helper()
	m, err := loadOnce()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var loadOnce = sync.OnceValues(loadManifests)

// loadManifests reads every .yaml and .yml file of this directory.
func loadManifests() (*manifests, error) {
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		return nil, errors.New("no .yaml manifests in deploy/kubernetes")
	}
	slices.Sort(files)
	m := new(manifests)
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		parts := splitDocuments(data)
		if len(parts) == 0 {
			errs = append(errs, fmt.Errorf("%s: no document", f))
		}
		for i, part := range parts {
			where := fmt.Sprintf("%s#%d", f, i+1)
			d, err := decode(where, part)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				continue
			}
			if d.obj.GetName() == "" {
				errs = append(errs, fmt.Errorf("%s: %s without metadata.name", where, d.meta.Kind))
			}
			m.docs = append(m.docs, d)
			switch o := d.obj.(type) {
			case *appsv1.Deployment:
				m.deployments = append(m.deployments, o)
			case *corev1.Service:
				m.services = append(m.services, o)
			case *corev1.ConfigMap:
				m.configMaps = append(m.configMaps, o)
			case *policyv1.PodDisruptionBudget:
				m.pdbs = append(m.pdbs, o)
			}
		}
	}
	return m, errors.Join(errs...)
}

// deployment is the switchyard Deployment and its switchyard container.
func (m *manifests) deployment(t *testing.T) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	if len(m.deployments) != 1 || m.deployments[0].Name != appName {
		t.Fatalf("want exactly one Deployment, %q; have %d", appName, len(m.deployments))
	}
	d := m.deployments[0]
	cs := d.Spec.Template.Spec.Containers
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == appName })
	if i < 0 {
		t.Fatalf("Deployment %s: no container named %q", d.Name, appName)
	}
	return d, &cs[i]
}

func (m *manifests) configMap(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	for _, c := range m.configMaps {
		if c.Name == configMapName {
			return c
		}
	}
	t.Fatalf("no ConfigMap %q", configMapName)
	return nil
}

func (m *manifests) service(name string) *corev1.Service {
	for _, s := range m.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// containerPort resolves a probe's or a Service's target port (a number or a port
// name) to a container port number of c; 0 when it names none.
func containerPort(c *corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	return 0
}

// namedPort is the number of c's port called name; 0 when there is none.
func namedPort(c *corev1.Container, name string) int32 {
	return containerPort(c, intstr.FromString(name))
}

// rawConfig is what the test reads of config.json, as plain JSON: the file must also
// pass the core's own parser (TestConfigMapConfigAcceptedByCore).
type rawConfig struct {
	LoadBalancer struct {
		Port      json.RawMessage `json:"load_balancer_port"`
		Strategy  string          `json:"strategy"`
		AdminAddr *string         `json:"admin_addr"`
		Timeouts  struct {
			Shutdown string `json:"shutdown"`
		} `json:"timeouts"`
	} `json:"load_balancer"`
	Servers struct {
		Backends  json.RawMessage `json:"backends"`
		Discovery *struct {
			SRV      string `json:"srv"`
			DNS      string `json:"dns"`
			Resolver string `json:"resolver"`
			Interval string `json:"interval"`
			Scheme   string `json:"scheme"`
			Weight   *int   `json:"weight"`
		} `json:"discovery"`
	} `json:"servers"`
}

// configJSON is config.json of the ConfigMap, raw and decoded.
func (m *manifests) configJSON(t *testing.T) ([]byte, *rawConfig) {
	t.Helper()
	cm := m.configMap(t)
	data, ok := cm.Data["config.json"]
	if !ok {
		t.Fatalf("ConfigMap %s has no config.json", cm.Name)
	}
	var rc rawConfig
	if err := json.Unmarshal([]byte(data), &rc); err != nil {
		t.Fatalf("ConfigMap %s: config.json: %v", cm.Name, err)
	}
	return []byte(data), &rc
}

// port reads a config port, written as a number or a string.
func port(raw json.RawMessage) (int, error) {
	s := strings.Trim(string(raw), `"`)
	return strconv.Atoi(s)
}

func TestKindsAndLabels(t *testing.T) {
	m := load(t)
	if len(m.deployments) != 1 || len(m.configMaps) != 1 || len(m.pdbs) != 1 || m.service(appName) == nil {
		t.Errorf("want one Deployment, one ConfigMap, one PodDisruptionBudget and a Service %q; have %d, %d, %d and %d Services",
			appName, len(m.deployments), len(m.configMaps), len(m.pdbs), len(m.services))
	}
	_, rc := m.configJSON(t)
	backends := ""
	if rc.Servers.Discovery != nil {
		if name, ok := parseSRV(rc.Servers.Discovery.SRV); ok {
			backends = name.service
		}
	}
	seen := map[string]string{}
	for _, d := range m.docs {
		key := d.meta.Kind + "/" + d.obj.GetName()
		if prev, dup := seen[key]; dup {
			t.Errorf("%s: %s again (first in %s)", d.where, key, prev)
		}
		seen[key] = d.where
		if d.meta.Kind == "Service" && d.obj.GetName() == backends {
			continue // the example backends: their own labels, and a namespace (TestDiscoveryMatchesHeadlessService)
		}
		if ns := d.obj.GetNamespace(); ns != "" {
			t.Errorf("%s: %s sets namespace %q: the manifests go to whatever namespace kubectl applies them to", d.where, key, ns)
		}
		if got := d.obj.GetLabels()[nameLabel]; got != appName {
			t.Errorf("%s: %s has label %s=%q, want %q", d.where, key, nameLabel, got, appName)
		}
	}
}

func TestDeploymentSelectorAndRollout(t *testing.T) {
	m := load(t)
	d, _ := m.deployment(t)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		t.Fatalf("Deployment selector: %v", err)
	}
	if sel.Empty() {
		t.Fatal("Deployment has an empty selector")
	}
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Deployment selector %s does not match its pod template's labels %v", sel, d.Spec.Template.Labels)
	}
	if d.Spec.Template.Labels[nameLabel] != appName {
		t.Errorf("pod template has no label %s=%s", nameLabel, appName)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("Deployment replicas = %v, want at least 2", d.Spec.Replicas)
	}
	s := d.Spec.Strategy
	if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil || s.RollingUpdate.MaxUnavailable == nil {
		t.Fatalf("Deployment strategy %+v: want RollingUpdate with maxUnavailable 0", s)
	}
	if mu := s.RollingUpdate.MaxUnavailable; mu.String() != "0" && mu.String() != "0%" {
		t.Errorf("maxUnavailable = %s, want 0", mu.String())
	}
}

func TestContainer(t *testing.T) {
	m := load(t)
	d, c := m.deployment(t)
	pod := d.Spec.Template.Spec
	if c.Image == "" {
		t.Error("container has no image")
	}
	if namedPort(c, "http") != 8000 || namedPort(c, "admin") != 8001 {
		t.Errorf("container ports %+v: want http 8000 and admin 8001", c.Ports)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
	}{{"readinessProbe", c.ReadinessProbe}, {"livenessProbe", c.LivenessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe", p.name)
			continue
		}
		g := p.probe.HTTPGet
		if got := containerPort(c, g.Port); got != 8001 {
			t.Errorf("%s: port %s is container port %d, want the admin port 8001", p.name, g.Port.String(), got)
		}
		if g.Path != "/status" {
			t.Errorf("%s: path %q, want /status", p.name, g.Path)
		}
		if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
			t.Errorf("%s: scheme %s, want HTTP", p.name, g.Scheme)
		}
	}

	// Resources: requests and limits for CPU and memory, requests within limits.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim {
			t.Errorf("resources: want a request and a limit for %s", r)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("resources: %s request %s above its limit %s", r, req.String(), lim.String())
		}
	}

	// Security: non-root, read-only root, no privilege escalation, no capabilities.
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("container has no securityContext")
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil && pod.SecurityContext != nil {
		nonRoot = pod.SecurityContext.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		t.Error("runAsNonRoot is not true")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Error("capabilities do not drop ALL")
	}

	// A read-only root needs a writable /tmp: plugin sockets live in $TMPDIR.
	tmp := false
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != "/tmp" {
			continue
		}
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		tmp = i >= 0 && pod.Volumes[i].EmptyDir != nil && !vm.ReadOnly
	}
	if !tmp {
		t.Error("no writable emptyDir mounted at /tmp (the root filesystem is read-only; plugin sockets go to $TMPDIR)")
	}

	// The grace period outlasts the core's drain.
	_, rc := m.configJSON(t)
	drain := config.Default().LoadBalancer.Timeouts.Shutdown.D()
	if s := rc.LoadBalancer.Timeouts.Shutdown; s != "" {
		var err error
		if drain, err = time.ParseDuration(s); err != nil {
			t.Fatalf("config.json: load_balancer.timeouts.shutdown: %v", err)
		}
	}
	grace := 30 * time.Second // Kubernetes' default
	if g := pod.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= drain {
		t.Errorf("terminationGracePeriodSeconds %v does not outlast the core's drain of %v: SIGKILL would cut it short", grace, drain)
	}

	// Metrics: the pod template's Prometheus annotations point at the admin port.
	a := d.Spec.Template.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" ||
		a["prometheus.io/port"] != strconv.Itoa(int(namedPort(c, "admin"))) {
		t.Errorf("pod template annotations %v: want prometheus.io/scrape \"true\", port the admin port, path /metrics", a)
	}
}

// entrypoint is the image's ENTRYPOINT (exec form) from deploy/Dockerfile.
func entrypoint(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var argv []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ENTRYPOINT "); ok {
			argv = nil
			if err := json.Unmarshal([]byte(rest), &argv); err != nil {
				t.Fatalf("%s: ENTRYPOINT %s: want the exec form: %v", dockerfile, rest, err)
			}
		}
	}
	if argv == nil {
		t.Fatalf("%s: no ENTRYPOINT", dockerfile)
	}
	return argv
}

// configFlag is the -config value of argv, "" when there is none.
func configFlag(argv []string) string {
	for i, a := range argv {
		a = strings.TrimPrefix(a, "-")
		if v, ok := strings.CutPrefix(a, "-config="); ok {
			return v
		}
		if v, ok := strings.CutPrefix(a, "config="); ok {
			return v
		}
		if (a == "config" || a == "-config") && i+1 < len(argv) {
			return argv[i+1]
		}
	}
	return ""
}

func TestConfigMapMountedWhereTheImageReads(t *testing.T) {
	m := load(t)
	d, c := m.deployment(t)
	cm := m.configMap(t)
	argv := slices.Concat(entrypoint(t), c.Args)
	if len(c.Command) > 0 {
		argv = slices.Concat(c.Command, c.Args)
	}
	file := configFlag(argv)
	if file == "" {
		t.Fatalf("the container runs %q: no -config flag", argv)
	}
	dir, base := path.Split(file)
	dir = path.Clean(dir)

	var mount *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		switch {
		case path.Clean(vm.MountPath) == dir:
			mount = &c.VolumeMounts[i]
		case path.Clean(vm.MountPath) == file:
			t.Errorf("volumeMount %s mounts %s itself (subPath %q): a file mount never sees the ConfigMap's edits; mount the directory %s",
				vm.Name, file, vm.SubPath, dir)
		}
	}
	if mount == nil {
		t.Fatalf("the container reads %s but nothing is mounted at %s", file, dir)
	}
	if mount.SubPath != "" || mount.SubPathExpr != "" {
		t.Errorf("volumeMount %s uses a subPath: edits of the ConfigMap would never reach the pod", mount.Name)
	}
	i := slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == mount.Name })
	if i < 0 {
		t.Fatalf("volumeMount %s: no such volume", mount.Name)
	}
	v := d.Spec.Template.Spec.Volumes[i]
	if v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Fatalf("volume %s at %s is not the ConfigMap %s", v.Name, dir, cm.Name)
	}
	key := base
	if len(v.ConfigMap.Items) > 0 {
		j := slices.IndexFunc(v.ConfigMap.Items, func(it corev1.KeyToPath) bool { return it.Path == base })
		if j < 0 {
			t.Fatalf("volume %s's items put no file at %s", v.Name, base)
		}
		key = v.ConfigMap.Items[j].Key
	}
	if _, ok := cm.Data[key]; !ok {
		t.Errorf("ConfigMap %s has no key %q for %s", cm.Name, key, file)
	}
	if v.ConfigMap.Optional != nil && *v.ConfigMap.Optional {
		t.Error("the config volume is optional: the core cannot start without config.json")
	}
}

func TestServicesSelectThePods(t *testing.T) {
	m := load(t)
	d, c := m.deployment(t)
	pods := labels.Set(d.Spec.Template.Labels)
	_, rc := m.configJSON(t)

	lbPort, err := port(rc.LoadBalancer.Port)
	if err != nil {
		t.Fatalf("config.json: load_balancer_port %s: %v", rc.LoadBalancer.Port, err)
	}
	svc := m.service(appName)
	if svc == nil {
		t.Fatalf("no Service %q", appName)
	}
	if svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP && svc.Spec.Type != corev1.ServiceTypeLoadBalancer &&
		svc.Spec.Type != corev1.ServiceTypeNodePort {
		t.Errorf("Service %s: type %s", svc.Name, svc.Spec.Type)
	}
	httpPort := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "http" })
	if httpPort < 0 {
		t.Fatalf("Service %s has no port named http", svc.Name)
	}
	if p := svc.Spec.Ports[httpPort]; p.Port != 80 || containerPort(c, p.TargetPort) != int32(lbPort) {
		t.Errorf("Service %s port http: %d -> %s (container port %d), want 80 -> %d (load_balancer_port)",
			svc.Name, p.Port, p.TargetPort.String(), containerPort(c, p.TargetPort), lbPort)
	}

	backends := ""
	if rc.Servers.Discovery != nil {
		if name, ok := parseSRV(rc.Servers.Discovery.SRV); ok {
			backends = name.service
		}
	}
	for _, s := range m.services {
		if s.Name == backends {
			continue
		}
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(pods) {
			t.Errorf("Service %s: selector %v does not select the Deployment's pods %v", s.Name, s.Spec.Selector, pods)
		}
		for _, p := range s.Spec.Ports {
			tp := p.TargetPort
			if tp.Type == intstr.Int && tp.IntVal == 0 {
				tp = intstr.FromInt32(p.Port) // targetPort defaults to port
			}
			if containerPort(c, tp) == 0 {
				t.Errorf("Service %s port %q: targetPort %s is no port of the container", s.Name, p.Name, tp.String())
			}
		}
	}
}

func TestPodDisruptionBudget(t *testing.T) {
	m := load(t)
	d, _ := m.deployment(t)
	if len(m.pdbs) != 1 {
		t.Fatalf("want one PodDisruptionBudget, have %d", len(m.pdbs))
	}
	p := m.pdbs[0]
	sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
	if err != nil {
		t.Fatalf("PodDisruptionBudget %s: selector: %v", p.Name, err)
	}
	if sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("PodDisruptionBudget %s: selector %s does not select the Deployment's pods", p.Name, sel)
	}
	if p.Spec.MinAvailable == nil || p.Spec.MaxUnavailable != nil {
		t.Fatalf("PodDisruptionBudget %s: want minAvailable (only)", p.Name)
	}
	minAvail, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MinAvailable, int(*d.Spec.Replicas), true)
	if err != nil {
		t.Fatal(err)
	}
	if minAvail < 1 || minAvail >= int(*d.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget %s: minAvailable %s of %d replicas: want at least 1 and fewer than all (else a node drain blocks)",
			p.Name, p.Spec.MinAvailable.String(), *d.Spec.Replicas)
	}
}

func TestConfigMapConfig(t *testing.T) {
	m := load(t)
	_, c := m.deployment(t)
	_, rc := m.configJSON(t)

	if rc.LoadBalancer.AdminAddr == nil {
		t.Fatal("config.json sets no load_balancer.admin_addr: the default 127.0.0.1:8001 is out of the probes' and Prometheus' reach")
	}
	host, p, err := net.SplitHostPort(*rc.LoadBalancer.AdminAddr)
	if err != nil {
		t.Fatalf("config.json: admin_addr %q: %v", *rc.LoadBalancer.AdminAddr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		t.Errorf("config.json: admin_addr %q is on loopback: the kubelet's probes could not reach it", *rc.LoadBalancer.AdminAddr)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		t.Errorf("config.json: admin_addr %q binds one address: a pod's IP is not known in advance; use 0.0.0.0", *rc.LoadBalancer.AdminAddr)
	}
	if want := strconv.Itoa(int(namedPort(c, "admin"))); p != want {
		t.Errorf("config.json: admin_addr port %s, the container's admin port is %s", p, want)
	}
	lbPort, err := port(rc.LoadBalancer.Port)
	if err != nil || lbPort != 8000 || int32(lbPort) != namedPort(c, "http") {
		t.Errorf("config.json: load_balancer_port %s, want 8000, the container's http port (%d)", rc.LoadBalancer.Port, namedPort(c, "http"))
	}
	if rc.LoadBalancer.Strategy != "leastconn" {
		t.Errorf("config.json: strategy %q, want leastconn", rc.LoadBalancer.Strategy)
	}
	if rc.Servers.Backends != nil {
		t.Errorf("config.json has servers.backends (%s): the backends come from servers.discovery alone", rc.Servers.Backends)
	}
	disc := rc.Servers.Discovery
	if disc == nil {
		t.Fatal("config.json has no servers.discovery")
	}
	if disc.SRV == "" {
		t.Error("config.json: servers.discovery has no srv")
	}
	if iv, err := time.ParseDuration(disc.Interval); err != nil || iv <= 0 {
		t.Errorf("config.json: servers.discovery.interval %q: want a positive Go duration", disc.Interval)
	}
	if disc.Scheme != "http" {
		t.Errorf("config.json: servers.discovery.scheme %q, want http", disc.Scheme)
	}
	if disc.Resolver != "" {
		if _, _, err := net.SplitHostPort(disc.Resolver); err != nil {
			t.Errorf("config.json: servers.discovery.resolver %q: want host:port or \"\" (the pod's resolver): %v", disc.Resolver, err)
		}
	}
}

// srvName is a Kubernetes Service's SRV name, _port._proto.service.namespace.svc.domain.
type srvName struct{ port, proto, service, namespace string }

var srvPattern = regexp.MustCompile(`^_([a-z0-9]([-a-z0-9]*[a-z0-9])?)\._(tcp|udp|sctp)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc\.cluster\.local\.?$`)

func parseSRV(s string) (srvName, bool) {
	g := srvPattern.FindStringSubmatch(s)
	if g == nil {
		return srvName{}, false
	}
	return srvName{port: g[1], proto: g[3], service: g[4], namespace: g[6]}, true
}

func TestDiscoveryMatchesHeadlessService(t *testing.T) {
	m := load(t)
	d, _ := m.deployment(t)
	_, rc := m.configJSON(t)
	if rc.Servers.Discovery == nil {
		t.Fatal("config.json has no servers.discovery")
	}
	srv := rc.Servers.Discovery.SRV
	name, ok := parseSRV(srv)
	if !ok {
		t.Fatalf("servers.discovery.srv %q is not a Service's SRV name _<port>._<proto>.<service>.<namespace>.svc.cluster.local", srv)
	}
	s := m.service(name.service)
	if s == nil {
		t.Fatalf("servers.discovery.srv %q names Service %q: none in the manifests", srv, name.service)
	}
	if s.Namespace != name.namespace {
		t.Errorf("Service %s: namespace %q, servers.discovery.srv %q names namespace %q", s.Name, s.Namespace, srv, name.namespace)
	}
	if s.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s: clusterIP %q, want None (headless: its SRV records then name each pod)", s.Name, s.Spec.ClusterIP)
	}
	i := slices.IndexFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == name.port })
	if i < 0 {
		t.Fatalf("Service %s has no port named %q: %s would have no records", s.Name, name.port, srv)
	}
	proto := s.Spec.Ports[i].Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	if !strings.EqualFold(string(proto), name.proto) {
		t.Errorf("Service %s port %s: protocol %s, servers.discovery.srv %q asks for %s", s.Name, name.port, proto, srv, name.proto)
	}
	if len(s.Spec.Selector) == 0 {
		t.Errorf("Service %s has no selector: no endpoints, so no SRV records", s.Name)
	}
	// Balancing over itself would loop each request back into switchyard.
	if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Service %s selects switchyard's own pods %v", s.Name, d.Spec.Template.Labels)
	}
}

// TestConfigMapConfigAcceptedByCore runs config.json through the core's own parser and
// validation, as `switchyard -check` would. A core that does not know
// servers.discovery yet (it is being built) refuses exactly that key: the test logs
// this and does not fail for it.
func TestConfigMapConfigAcceptedByCore(t *testing.T) {
	m := load(t)
	_, c := m.deployment(t)
	data, _ := m.configJSON(t)
	cfg, err := config.Parse(data, "config.json")
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) && ce.Key == "servers.discovery" && strings.Contains(ce.Msg, "unknown key") {
			t.Logf("not checked by the core: this core does not know servers.discovery yet (%v)", err)
			return
		}
		t.Fatalf("the core refuses config.json: %v", err)
	}
	if err := lb.Validate(cfg); err != nil {
		t.Fatalf("the core refuses config.json: %v", err)
	}
	if cfg.Servers.Discovery == nil {
		t.Error("the core reads no servers.discovery")
	}
	// Without servers.backends, a core that ignored discovery would fall back on the
	// three local test servers, which are not in the pod.
	for _, b := range cfg.Servers.Backends {
		t.Errorf("the core adds backend %s from config.json: the backends should come from DNS alone", b.URL)
	}
	if int32(cfg.LoadBalancer.Port) != namedPort(c, "http") {
		t.Errorf("the core reads load_balancer_port %d, the container's http port is %d", cfg.LoadBalancer.Port, namedPort(c, "http"))
	}
	if _, p, _ := net.SplitHostPort(cfg.LoadBalancer.AdminAddr); p != strconv.Itoa(int(namedPort(c, "admin"))) {
		t.Errorf("the core reads admin_addr %q, the container's admin port is %d", cfg.LoadBalancer.AdminAddr, namedPort(c, "admin"))
	}
}

// TestStrictDecoding shows that the decoding the tests above rely on refuses a
// misspelled field and a duplicate one, and splits multi-document files.
func TestStrictDecoding(t *testing.T) {
	good := "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  clusterIP: None\n"
	if _, err := decode("good", []byte(good)); err != nil {
		t.Fatalf("a valid Service: %v", err)
	}
	for name, bad := range map[string]string{
		"misspelled field": strings.Replace(good, "clusterIP", "clusterIp", 1),
		"duplicate field":  good + "  clusterIP: None\n",
		"unknown kind":     strings.Replace(good, "kind: Service", "kind: Servce", 1),
		"wrong apiVersion": strings.Replace(good, "apiVersion: v1", "apiVersion: apps/v1", 1),
		"wrong type":       strings.Replace(good, "clusterIP: None", "clusterIP: [None]", 1),
		"unknown field":    good + "  selectr: {app: a}\n",
	} {
		if _, err := decode(name, []byte(bad)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	stream := "# header\n---\n" + good + "---\n# only a comment\n---  \n" + strings.Replace(good, "name: a", "name: b", 1)
	if docs := splitDocuments([]byte(stream)); len(docs) != 2 || !bytes.Contains(docs[1], []byte("name: b")) {
		t.Errorf("splitDocuments: got %d documents, want 2", len(docs))
	}
}
