package deploy

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// Kubelet probes and a ServiceMonitor's scrape send no token. The paths the manifests and
// the chart's templates probe and scrape answer 200 without one on an agent whose API
// needs it; were one of them behind the token, pods would never start or never be scraped.
func TestProbesAndScrapeNeedNoToken(t *testing.T) {
	var paths []string
	objs := k8sObjects(t, "kubernetes/sidecar.yaml", yamlFile(t, "kubernetes/sidecar.yaml"))
	v := container(t, objs["Deployment/shop"], "vigil")
	for _, probe := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
		if p := str(get(v, probe, "httpGet", "path")); p != "" {
			paths = append(paths, p)
		}
	}
	paths = append(paths, str(get(objs["ServiceMonitor/shop-vigil"], "spec", "endpoints", 0, "path")))
	// The chart's templates, as written (helm renders them unchanged: no value sets a path).
	templates, err := filepath.Glob("helm/vigil/templates/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := regexp.MustCompile(`path: (/[a-z]+)`)
	for _, f := range templates {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range path.FindAllStringSubmatch(string(data), -1) {
			paths = append(paths, m[1])
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	if !slices.Equal(paths, []string{"/healthz", "/metrics", "/readyz"}) {
		t.Errorf("probed and scraped paths %v; want /healthz, /metrics and /readyz (this test checks each)", paths)
	}

	agent := startAgent(t, agentConfig("shop", "interval: 200ms, count: 2"), startShop(t))
	if resp, err := http.Get(agent.url + "/api/v1/checks"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the agent's API answers without its token (%v); this test needs one that asks for it", err)
	} else {
		resp.Body.Close()
	}
	for _, p := range paths {
		resp, err := http.Get(agent.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %d; a probe or scrape there would fail", p, resp.StatusCode)
		}
	}
}
