package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// composeEnv resolves a Compose environment block: ${VAR:?msg} and ${VAR} read from the
// shell that runs `docker compose`, here a stand-in value.
func composeEnv(env map[string]any) map[string]string {
	out := map[string]string{}
	ref := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}`)
	for k, v := range env {
		out[k] = ref.ReplaceAllString(str(v), "from-shell-$1")
	}
	return out
}

func TestComposeSidecar(t *testing.T) {
	docs := yamlFile(t, "compose/compose.yaml")
	if len(docs) != 1 {
		t.Fatalf("compose.yaml: %d documents", len(docs))
	}
	c := docs[0]
	shop, _ := get(c, "services", "shop").(map[string]any)
	v, _ := get(c, "services", "vigil").(map[string]any)
	if shop == nil || v == nil {
		t.Fatalf("want services shop and vigil: %v", get(c, "services"))
	}
	if nm := str(v["network_mode"]); nm != "service:shop" {
		t.Errorf("vigil's network_mode is %q; it must share the shop's network namespace (service:shop)", nm)
	}
	for _, svc := range []map[string]any{shop, v} {
		ctx, df := str(get(svc, "build", "context")), str(get(svc, "build", "dockerfile"))
		if _, err := os.Stat(filepath.Join("compose", ctx, df)); err != nil {
			t.Errorf("build %s, %s: %v", ctx, df, err)
		}
	}
	if args := fmt.Sprint(shop["command"]); !strings.Contains(args, "demo app --listen 0.0.0.0:8080") {
		t.Errorf("the shop runs %s; want the sample shop on :8080", args)
	}
	ports := fmt.Sprint(shop["ports"])
	for _, p := range []string{"8080:8080", "9595:9595"} {
		if !strings.Contains(ports, p) {
			t.Errorf("the shop's container publishes %s; want %s (vigil lives in its network namespace)", ports, p)
		}
	}
	var config string
	for _, m := range list(v["volumes"]) {
		src, dst, _ := strings.Cut(strings.TrimSuffix(str(m), ":ro"), ":")
		// A bind mount of the file itself keeps the inode it found: an edit saved by rename
		// (most editors, sed -i) never reaches the agent, whose reload the docs promise.
		if dst == "/etc/vigil/vigil.yaml" {
			t.Errorf("vigil.yaml is bind-mounted as a file (%s): an edit saved by rename never reaches the agent; mount its folder at /etc/vigil", m)
		}
		if dst == "/etc/vigil" {
			data, err := os.ReadFile(filepath.Join("compose", src, "vigil.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			config = string(data)
		}
		if vols, _ := c["volumes"].(map[string]any); dst == "/data" && !hasKey(vols, src) {
			t.Errorf("volume %s is not declared", src)
		}
	}
	if config == "" {
		t.Fatal("no folder with vigil.yaml mounted at /etc/vigil")
	}
	if !strings.Contains(config, "dsn: /data/vigil.db") || !strings.Contains(config, "listen: 0.0.0.0:9595") {
		t.Error("the config must keep its store on the /data volume and listen on :9595")
	}
	env := composeEnv(v["environment"].(map[string]any))
	validate(t, "compose/config/vigil.yaml", config, env)
	// The secret the shop verifies rollbacks with is the one vigil signs them with.
	if composeEnv(shop["environment"].(map[string]any))["VIGIL_DEMO_ROLLBACK_SECRET"] != env["ROLLBACK_SECRET"] {
		t.Error("the shop and vigil must share ROLLBACK_SECRET")
	}
}

func TestKubernetesSidecar(t *testing.T) {
	objs := k8sObjects(t, "kubernetes/sidecar.yaml", yamlFile(t, "kubernetes/sidecar.yaml"))
	if objs["Secret/vigil"] != nil {
		t.Error("sidecar.yaml must not hold the Secret: applying it would overwrite the real one with placeholders")
	}
	for k, v := range k8sObjects(t, "kubernetes/secret.yaml", yamlFile(t, "kubernetes/secret.yaml")) {
		objs[k] = v
	}
	for _, want := range []string{"ConfigMap/shop-vigil", "Secret/vigil", "Deployment/shop", "Service/shop", "Service/shop-vigil", "ServiceMonitor/shop-vigil"} {
		if objs[want] == nil {
			t.Errorf("sidecar.yaml lacks %s", want)
		}
	}
	dep := objs["Deployment/shop"]
	if dep == nil {
		t.FailNow()
	}
	checkPod(t, dep)
	v := container(t, dep, "vigil")
	app := container(t, dep, "app")
	podLabels := get(dep, "spec", "template", "metadata", "labels").(map[string]any)

	// The config is the ConfigMap mounted at the image's $VIGIL_CONFIG, and it validates with
	// exactly the environment the container gets.
	cmName := mountedConfigMap(t, dep, v, "/etc/vigil")
	cm := objs["ConfigMap/"+cmName]
	config := str(get(cm, "data", "vigil.yaml"))
	if config == "" {
		t.Fatalf("ConfigMap %s has no vigil.yaml", cmName)
	}
	validate(t, "ConfigMap "+cmName, config, containerEnv(t, v))
	if !strings.Contains(config, "dsn: /data/vigil.db") || mountOf(v, "/data") == "" {
		t.Error("the store must be on the /data volume")
	}

	// Every Secret reference names a key the Secret has.
	secret := objs["Secret/vigil"]
	for _, c := range []map[string]any{v, app} {
		for _, e := range list(c["env"]) {
			ref := get(e, "valueFrom", "secretKeyRef")
			if ref == nil {
				continue
			}
			if str(get(ref, "name")) != "vigil" || get(secret, "stringData", str(get(ref, "key"))) == nil {
				t.Errorf("%s: env %s reads %v, which the Secret does not hold", c["name"], get(e, "name"), ref)
			}
		}
	}

	// Probes: liveness and startup on /healthz through a named port; no readiness probe that
	// could take the app out of its Service because of vigil.
	for _, probe := range []string{"livenessProbe", "startupProbe"} {
		if str(get(v, probe, "httpGet", "path")) != "/healthz" || !hasPort(v, str(get(v, probe, "httpGet", "port"))) {
			t.Errorf("vigil's %s: %v", probe, v[probe])
		}
	}
	if v["readinessProbe"] != nil {
		t.Error("vigil must not have a readiness probe: an unusable Chromium would take the app out of its Service")
	}
	if get(v, "resources", "limits", "memory") == nil || get(v, "resources", "requests", "cpu") == nil {
		t.Errorf("vigil's resources: %v", v["resources"])
	}

	// The Services select the pod, and the ServiceMonitor the vigil Service, by a port it has.
	for _, name := range []string{"shop", "shop-vigil"} {
		svc := objs["Service/"+name]
		for k, want := range get(svc, "spec", "selector").(map[string]any) {
			if podLabels[k] != want {
				t.Errorf("Service %s selects %s=%v; the pod has %v", name, k, want, podLabels[k])
			}
		}
		for _, p := range list(get(svc, "spec", "ports")) {
			target := str(get(p, "targetPort"))
			if !hasPort(v, target) && !hasPort(app, target) {
				t.Errorf("Service %s targets port %s, which no container names", name, target)
			}
		}
	}
	vs := objs["Service/shop-vigil"]
	sm := objs["ServiceMonitor/shop-vigil"]
	svcLabels := get(vs, "metadata", "labels").(map[string]any)
	for k, want := range get(sm, "spec", "selector", "matchLabels").(map[string]any) {
		if svcLabels[k] != want {
			t.Errorf("the ServiceMonitor selects %s=%v; Service shop-vigil has %v", k, want, svcLabels[k])
		}
	}
	ep := get(sm, "spec", "endpoints", 0)
	if str(get(ep, "path")) != "/metrics" || str(get(get(vs, "spec", "ports", 0), "name")) != str(get(ep, "port")) {
		t.Errorf("the ServiceMonitor scrapes %v; want /metrics on shop-vigil's named port", ep)
	}
}

// checkPod asserts what the image needs from a pod: its non-root user, a writable /tmp and
// HOME on a read-only root filesystem, and no privilege.
func checkPod(t *testing.T, workload map[string]any) {
	t.Helper()
	spec := get(workload, "spec", "template", "spec")
	if get(spec, "securityContext", "runAsNonRoot") != true || str(get(spec, "securityContext", "runAsUser")) != "10001" {
		t.Errorf("the pod must run as the image's non-root user 10001: %v", get(spec, "securityContext"))
	}
	if str(get(spec, "securityContext", "seccompProfile", "type")) != "RuntimeDefault" {
		t.Error("the pod should use the runtime's default seccomp profile")
	}
	v := container(t, workload, "vigil")
	sc := v["securityContext"]
	if get(sc, "readOnlyRootFilesystem") != true || get(sc, "allowPrivilegeEscalation") != false ||
		!slices.Contains(list(get(sc, "capabilities", "drop")), any("ALL")) {
		t.Errorf("vigil's securityContext: %v", sc)
	}
	if mountOf(v, "/tmp") == "" {
		t.Error("Chromium needs a writable /tmp on a read-only root filesystem")
	}
	if containerEnv(t, v)["HOME"] != "/tmp" {
		t.Error("HOME must be writable (/tmp) on a read-only root filesystem: Chromium writes under it")
	}
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

func mountOf(c map[string]any, at string) string {
	for _, m := range list(c["volumeMounts"]) {
		if str(get(m, "mountPath")) == at {
			return str(get(m, "name"))
		}
	}
	return ""
}

func mountedConfigMap(t *testing.T, workload, c map[string]any, at string) string {
	t.Helper()
	vol := mountOf(c, at)
	for _, v := range list(get(workload, "spec", "template", "spec", "volumes")) {
		if str(get(v, "name")) == vol && get(v, "configMap", "name") != nil {
			return str(get(v, "configMap", "name"))
		}
	}
	t.Fatalf("nothing mounts a ConfigMap at %s (the image reads /etc/vigil/vigil.yaml)", at)
	return ""
}

func hasPort(c map[string]any, name string) bool {
	for _, p := range list(c["ports"]) {
		if str(get(p, "name")) == name {
			return true
		}
	}
	return false
}

// helm runs the helm binary scripts/helmtest built ($VIGIL_HELM).
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("VIGIL_HELM")
	if bin == "" {
		if os.Getenv("VIGIL_REQUIRE_HELM") != "" {
			t.Fatal("VIGIL_REQUIRE_HELM is set but VIGIL_HELM is not: run scripts/helmtest")
		}
		t.Skip("helm is not built: scripts/helmtest builds it and runs these tests (VIGIL_HELM)")
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

const chart = "helm/vigil"

func TestHelmChart(t *testing.T) {
	for _, values := range [][]string{nil, {"-f", chart + "/ci/full-values.yaml"}} {
		if out, err := helm(t, append([]string{"lint", "--strict", chart}, values...)...); err != nil {
			t.Errorf("helm lint %v: %v\n%s", values, err, out)
		}
	}

	t.Run("defaults", func(t *testing.T) {
		objs := render(t)
		want := []string{"ConfigMap/rel-vigil", "Service/rel-vigil", "Service/rel-vigil-headless", "StatefulSet/rel-vigil"}
		if got := sortedKeys(objs); !slices.Equal(got, want) {
			t.Errorf("rendered %v; want %v (no ServiceMonitor or NetworkPolicy unless enabled)", got, want)
		}
		sts := objs["StatefulSet/rel-vigil"]
		checkChartPod(t, objs, sts, "9595")
		if str(get(sts, "spec", "volumeClaimTemplates", 0, "metadata", "name")) != "data" {
			t.Error("persistence is on by default: the StatefulSet needs a data volume claim")
		}
		ref := get(container(t, sts, "vigil"), "env", 0, "valueFrom", "secretKeyRef")
		if str(get(ref, "name")) != "vigil" || str(get(ref, "key")) != "api-token" {
			t.Errorf("the API token comes from %v; want Secret vigil, key api-token", ref)
		}
	})

	t.Run("every feature", func(t *testing.T) {
		objs := render(t, "-f", chart+"/ci/full-values.yaml")
		sts := objs["StatefulSet/rel-vigil"]
		checkChartPod(t, objs, sts, "8080")
		if sc := str(get(sts, "spec", "volumeClaimTemplates", 0, "spec", "storageClassName")); sc != "fast-ssd" {
			t.Errorf("storageClassName %q", sc)
		}
		sm := objs["ServiceMonitor/rel-vigil"]
		if str(get(sm, "metadata", "labels", "release")) != "prometheus" || str(get(sm, "spec", "endpoints", 0, "port")) != "http" ||
			str(get(sm, "spec", "endpoints", 0, "interval")) != "15s" {
			t.Errorf("ServiceMonitor: %v", sm)
		}
		np := objs["NetworkPolicy/rel-vigil"]
		if types := fmt.Sprint(get(np, "spec", "policyTypes")); types != "[Ingress Egress]" {
			t.Errorf("policyTypes %s", types)
		}
		if from := list(get(np, "spec", "ingress", 0, "from")); len(from) != 2 {
			t.Errorf("ingress from %v; want the two namespaces of the values", from)
		}
		egress := list(get(np, "spec", "egress"))
		if len(egress) != 3 || !strings.Contains(fmt.Sprint(egress[0]), "port:53") {
			t.Errorf("egress %v; want DNS and the two rules of the values", egress)
		}
		if str(get(container(t, sts, "vigil"), "image")) != "registry.example.com/vigil:0.1.0" {
			t.Error("image.repository and image.tag are not used")
		}
	})

	t.Run("no persistence", func(t *testing.T) {
		sts := render(t, "--set", "persistence.enabled=false")["StatefulSet/rel-vigil"]
		if get(sts, "spec", "volumeClaimTemplates") != nil {
			t.Error("persistence.enabled=false still claims a volume")
		}
		found := false
		for _, v := range list(get(sts, "spec", "template", "spec", "volumes")) {
			found = found || (str(get(v, "name")) == "data" && get(v, "emptyDir") != nil)
		}
		if !found {
			t.Error("without persistence the data volume must be an emptyDir")
		}
	})

	// Setting another store key (retention, max_size) keeps the store on the volume: vigil's
	// own default, vigil.db beside the config, is the read-only ConfigMap mount.
	t.Run("store keys without a dsn", func(t *testing.T) {
		objs := render(t, "--set", "config.store.retention=720h")
		sts := objs["StatefulSet/rel-vigil"]
		checkChartPod(t, objs, sts, "9595")
		config := str(get(objs["ConfigMap/"+mountedConfigMap(t, sts, container(t, sts, "vigil"), "/etc/vigil")], "data", "vigil.yaml"))
		if !strings.Contains(config, "dsn: /data/vigil.db") || !strings.Contains(config, "retention: 720h") {
			t.Errorf("config.store.retention alone: the store must stay at /data/vigil.db, with the retention:\n%s", config)
		}
	})

	// OpenShift's restricted policy picks the UID (and refuses 10001): the values drop the
	// pod's user, group and fsGroup, and the pod keeps runAsNonRoot and the container's
	// lock-down. The image runs as any UID in group 0 (scripts/imagetest).
	t.Run("OpenShift: no fixed UID", func(t *testing.T) {
		sts := render(t, "--set", "podSecurityContext.runAsUser=null", "--set", "podSecurityContext.runAsGroup=null",
			"--set", "podSecurityContext.fsGroup=null")["StatefulSet/rel-vigil"]
		psc := get(sts, "spec", "template", "spec", "securityContext").(map[string]any)
		if hasKey(psc, "runAsUser") || hasKey(psc, "runAsGroup") || hasKey(psc, "fsGroup") || psc["runAsNonRoot"] != true {
			t.Errorf("the pod's securityContext: %v; want runAsNonRoot and no fixed user, group or fsGroup", psc)
		}
		if get(container(t, sts, "vigil"), "securityContext", "readOnlyRootFilesystem") != true {
			t.Error("the container lost its read-only root filesystem")
		}
	})

	t.Run("replicas on PostgreSQL", func(t *testing.T) {
		objs := render(t, "--set", "replicas=2", "--set", "persistence.enabled=false",
			"--set", "config.store.driver=postgres", "--set-string", "config.store.dsn=postgres://vigil@db.monitoring:5432/vigil")
		sts := objs["StatefulSet/rel-vigil"]
		checkChartPod(t, objs, sts, "9595")
		if n := fmt.Sprint(get(sts, "spec", "replicas")); n != "2" {
			t.Errorf("replicas %s; want 2", n)
		}
		pod := get(sts, "spec", "template", "spec")
		labels := get(sts, "spec", "selector", "matchLabels")
		spread := list(get(pod, "topologySpreadConstraints"))
		if len(spread) != 1 || str(get(spread[0], "topologyKey")) != "kubernetes.io/hostname" ||
			str(get(spread[0], "whenUnsatisfiable")) != "ScheduleAnyway" || fmt.Sprint(get(spread[0], "labelSelector", "matchLabels")) != fmt.Sprint(labels) {
			t.Errorf("two replicas are not spread over nodes: %v", spread)
		}
		pdb := objs["PodDisruptionBudget/rel-vigil"]
		if pdb == nil || fmt.Sprint(get(pdb, "spec", "maxUnavailable")) != "1" || fmt.Sprint(get(pdb, "spec", "selector", "matchLabels")) != fmt.Sprint(labels) {
			t.Errorf("two replicas without a PodDisruptionBudget of maxUnavailable 1 over their pods: %v", pdb)
		}
		// Values of one's own replace the defaults.
		objs = render(t, "--set", "replicas=3", "--set", "persistence.enabled=false",
			"--set", "config.store.driver=postgres", "--set-string", "config.store.dsn=postgres://vigil@db.monitoring:5432/vigil",
			"--set-string", "podDisruptionBudget.maxUnavailable=50%",
			"--set", "topologySpreadConstraints[0].maxSkew=1", "--set", "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
			"--set", "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule")
		spread = list(get(objs["StatefulSet/rel-vigil"], "spec", "template", "spec", "topologySpreadConstraints"))
		if len(spread) != 1 || str(get(spread[0], "topologyKey")) != "topology.kubernetes.io/zone" {
			t.Errorf("topologySpreadConstraints of the values not used: %v", spread)
		}
		if n := fmt.Sprint(get(objs["PodDisruptionBudget/rel-vigil"], "spec", "maxUnavailable")); n != "50%" {
			t.Errorf("podDisruptionBudget.maxUnavailable=50%% renders %s", n)
		}
		objs = render(t, "--set", "replicas=2", "--set", "persistence.enabled=false", "--set", "podDisruptionBudget.enabled=false",
			"--set", "config.store.driver=postgres", "--set-string", "config.store.dsn=postgres://vigil@db.monitoring:5432/vigil")
		if objs["PodDisruptionBudget/rel-vigil"] != nil {
			t.Error("podDisruptionBudget.enabled=false still renders one")
		}
	})

	t.Run("one replica: no budget, no spread", func(t *testing.T) {
		objs := render(t)
		if objs["PodDisruptionBudget/rel-vigil"] != nil || get(objs["StatefulSet/rel-vigil"], "spec", "template", "spec", "topologySpreadConstraints") != nil {
			t.Error("one replica renders a PodDisruptionBudget or a spread")
		}
	})

	// values.schema.json and the templates refuse what would otherwise do nothing.
	for _, tc := range []struct{ set, want string }{
		{"imageTag=1.0", "imageTag"},
		{"persistence.size=lots", "/persistence/size"},
		{"service.port=0", "/service/port"},
		{"config.agent.listen=0.0.0.0:1", "config.agent.listen is set by the chart"},
		{"config.agent.api_token=null", "api_token"},
		// An empty token stops the agent at start (it listens beyond loopback): a crash loop
		// rather than a refused install. A token written in the values sits in a ConfigMap.
		{"config.agent.api_token=", "config.agent.api_token must be ${VIGIL_API_TOKEN}"},
		{"config.agent.api_token=s3cret-literal-token", "config.agent.api_token must be ${VIGIL_API_TOKEN}"},
		// The store is written: a read-only volume stops the agent at start.
		{"persistence.accessModes[0]=ReadOnlyMany", "/persistence/accessModes/0"},
		{"networkPolicy.egres[0].to=x", "egres"},
		{"replicas=0", "/replicas"},
		{"podDisruptionBudget.maxUnavailable=0", "/podDisruptionBudget/maxUnavailable"},
		{"replicas=2", "replicas above 1 need config.store.driver: postgres"},
	} {
		out, err := helm(t, "template", "rel", chart, "--set", tc.set)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("helm template --set %s: %v; want an error about %s:\n%s", tc.set, err, tc.want, out)
		}
	}
}

func render(t *testing.T, args ...string) map[string]map[string]any {
	t.Helper()
	out, err := helm(t, append([]string{"template", "rel", chart, "--namespace", "monitoring"}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	return k8sObjects(t, "helm template", yamlDocs(t, "helm template", []byte(out)))
}

// checkChartPod: the agent listens where its Services and probes look, and its config
// validates with exactly the environment the StatefulSet gives it.
func checkChartPod(t *testing.T, objs map[string]map[string]any, sts map[string]any, port string) {
	t.Helper()
	checkPod(t, sts)
	v := container(t, sts, "vigil")
	if p := str(get(v, "ports", 0, "containerPort")); p != port || str(get(v, "ports", 0, "name")) != "http" {
		t.Errorf("container port %s; want %s named http", p, port)
	}
	for _, probe := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
		if str(get(v, probe, "httpGet", "port")) != "http" {
			t.Errorf("%s: %v", probe, v[probe])
		}
	}
	if str(get(v, "readinessProbe", "httpGet", "path")) != "/readyz" {
		t.Error("standalone, readiness is /readyz (config, store and Chromium)")
	}
	cm := objs["ConfigMap/"+mountedConfigMap(t, sts, v, "/etc/vigil")]
	config := str(get(cm, "data", "vigil.yaml"))
	if !strings.Contains(config, "listen: 0.0.0.0:"+port) {
		t.Errorf("the config does not listen on the container port %s:\n%s", port, config)
	}
	validate(t, "the chart's ConfigMap", config, containerEnv(t, v))
	for _, name := range []string{"rel-vigil", "rel-vigil-headless"} {
		if str(get(objs["Service/"+name], "spec", "ports", 0, "targetPort")) != "http" {
			t.Errorf("Service %s does not target the http port", name)
		}
	}
	if str(get(sts, "spec", "serviceName")) != "rel-vigil-headless" {
		t.Error("the StatefulSet's serviceName must be its headless Service")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestHelmEveryValueChanges holds the chart's rule that a value is never accepted to do
// nothing: every leaf of values.yaml, changed, changes what the chart renders (or is refused
// with the reason). A value that acts only with another (serviceMonitor.interval once the
// ServiceMonitor is enabled) is changed over that context, and compared with the context
// alone. A new value without a case here fails the test.
func TestHelmEveryValueChanges(t *testing.T) {
	const pg = "config: {store: {driver: postgres, dsn: \"postgres://vigil@db.monitoring:5432/vigil\"}}\npersistence: {enabled: false}\n"
	const sm, np = "serviceMonitor: {enabled: true}\n", "networkPolicy: {enabled: true}\n"
	cases := map[string]struct{ context, change, refused string }{
		"image.repository":                         {change: "image: {repository: registry.example.com/vigil}"},
		"image.tag":                                {change: "image: {tag: \"9.9.9\"}"},
		"image.pullPolicy":                         {change: "image: {pullPolicy: Always}"},
		"imagePullSecrets":                         {change: "imagePullSecrets: [{name: regcred}]"},
		"nameOverride":                             {change: "nameOverride: watcher"},
		"fullnameOverride":                         {change: "fullnameOverride: watcher"},
		"config.agent.api_token":                   {change: "config: {agent: {api_token: \"${OTHER}\"}}", refused: "config.agent.api_token must be ${VIGIL_API_TOKEN}"},
		"config.defaults.every":                    {change: "config: {defaults: {every: 5m}}"},
		"config.defaults.timeout":                  {change: "config: {defaults: {timeout: 20s}}"},
		"config.checks":                            {change: "config: {checks: [{name: home, kind: http, request: {url: \"http://shop/\"}}]}"},
		"config.services":                          {change: "config: {services: {shop: {checks: []}}}"},
		"apiToken.existingSecret":                  {change: "apiToken: {existingSecret: vigil-api}"},
		"apiToken.key":                             {change: "apiToken: {key: token}"},
		"secretEnv":                                {change: "secretEnv: [{name: SLACK_TOKEN, secret: vigil-notifiers, key: slack-token}]"},
		"env":                                      {change: "env: [{name: TZ, value: Europe/Prague}]"},
		"replicas":                                 {context: pg, change: "replicas: 2"},
		"persistence.enabled":                      {change: "persistence: {enabled: false}"},
		"persistence.size":                         {change: "persistence: {size: 10Gi}"},
		"persistence.storageClassName":             {change: "persistence: {storageClassName: fast-ssd}"},
		"persistence.accessModes":                  {change: "persistence: {accessModes: [ReadWriteOncePod]}"},
		"service.type":                             {change: "service: {type: NodePort}"},
		"service.port":                             {change: "service: {port: 8080}"},
		"resources.requests.cpu":                   {change: "resources: {requests: {cpu: 200m}}"},
		"resources.requests.memory":                {change: "resources: {requests: {memory: 512Mi}}"},
		"resources.limits.memory":                  {change: "resources: {limits: {memory: 2Gi}}"},
		"podSecurityContext.runAsNonRoot":          {change: "podSecurityContext: {runAsNonRoot: false}"},
		"podSecurityContext.runAsUser":             {change: "podSecurityContext: {runAsUser: 1000680000}"},
		"podSecurityContext.runAsGroup":            {change: "podSecurityContext: {runAsGroup: 0}"},
		"podSecurityContext.fsGroup":               {change: "podSecurityContext: {fsGroup: 1000680000}"},
		"podSecurityContext.seccompProfile.type":   {change: "podSecurityContext: {seccompProfile: {type: Localhost}}"},
		"securityContext.allowPrivilegeEscalation": {change: "securityContext: {allowPrivilegeEscalation: true}"},
		"securityContext.readOnlyRootFilesystem":   {change: "securityContext: {readOnlyRootFilesystem: false}"},
		"securityContext.capabilities.drop":        {change: "securityContext: {capabilities: {drop: [NET_RAW]}}"},
		"podAnnotations":                           {change: "podAnnotations: {example.com/team: sre}"},
		"podLabels":                                {change: "podLabels: {team: sre}"},
		"nodeSelector":                             {change: "nodeSelector: {kubernetes.io/os: linux}"},
		"tolerations":                              {change: "tolerations: [{key: dedicated, operator: Exists}]"},
		"affinity":                                 {change: "affinity: {nodeAffinity: {}}"},
		"topologySpreadConstraints":                {change: "topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule}]"},
		"podDisruptionBudget.enabled":              {context: pg + "replicas: 2\n", change: "podDisruptionBudget: {enabled: false}"},
		"podDisruptionBudget.maxUnavailable":       {context: pg + "replicas: 2\n", change: "podDisruptionBudget: {maxUnavailable: 2}"},
		"serviceMonitor.enabled":                   {change: sm},
		"serviceMonitor.interval":                  {context: sm, change: "serviceMonitor: {interval: 1m}"},
		"serviceMonitor.scrapeTimeout":             {context: sm, change: "serviceMonitor: {scrapeTimeout: 20s}"},
		"serviceMonitor.labels":                    {context: sm, change: "serviceMonitor: {labels: {release: prometheus}}"},
		"networkPolicy.enabled":                    {change: np},
		"networkPolicy.ingressFrom":                {context: np, change: "networkPolicy: {ingressFrom: [{namespaceSelector: {}}]}"},
		"networkPolicy.egress":                     {context: np, change: "networkPolicy: {egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}"},
	}
	values := yamlFile(t, chart+"/values.yaml")[0]
	var leaves []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			for k, e := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), e)
			}
			return
		}
		leaves = append(leaves, prefix)
	}
	walk("", values)
	slices.Sort(leaves)

	dir := t.TempDir()
	n := 0
	file := func(content string) string {
		n++
		path := filepath.Join(dir, fmt.Sprintf("values-%d.yaml", n))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	rendered := map[string]string{}
	template := func(files ...string) (string, error) {
		args := []string{"template", "rel", chart, "--namespace", "monitoring"}
		for _, f := range files {
			args = append(args, "-f", f)
		}
		return helm(t, args...)
	}
	for _, leaf := range leaves {
		c, ok := cases[leaf]
		if !ok {
			t.Errorf("values.yaml has %s, and this test no case that changes it", leaf)
			continue
		}
		var files []string
		if c.context != "" {
			files = append(files, file(c.context))
		}
		before, ok := rendered[c.context]
		if !ok {
			out, err := template(files...)
			if err != nil {
				t.Fatalf("%s: helm template over %q: %v\n%s", leaf, c.context, err, out)
			}
			before, rendered[c.context] = out, out
		}
		after, err := template(append(files, file(c.change))...)
		switch {
		case c.refused != "":
			if err == nil || !strings.Contains(after, c.refused) {
				t.Errorf("%s: %q renders (%v); want it refused: %s", leaf, c.change, err, c.refused)
			}
		case err != nil:
			t.Errorf("%s: %q: %v\n%s", leaf, c.change, err, after)
		case after == before:
			t.Errorf("%s: %q changes nothing the chart renders", leaf, c.change)
		}
	}
	for k := range cases {
		if !slices.Contains(leaves, k) {
			t.Errorf("a case for %s, which values.yaml does not have", k)
		}
	}
}
