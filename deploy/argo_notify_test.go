package deploy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"text/template"

	"go.yaml.in/yaml/v3"
)

// notification is what Argo Rollouts' notification engine sends for a webhook template
// (notifications-engine pkg/services/webhook): the service's URL and headers, the
// template's method, path and body rendered as Go templates over {"rollout": the Rollout},
// "$key" in the service's config taken from argo-rollouts-notification-secret.
type notification struct {
	method, url, body string
	headers           map[string]string
}

// renderNotification renders the webhook of template name for rollout, as the engine does.
func renderNotification(t *testing.T, data map[string]string, service, name string, rollout map[string]any, secrets map[string]string) notification {
	t.Helper()
	var svc struct {
		URL     string `yaml:"url"`
		Headers []struct{ Name, Value string }
	}
	if err := yaml.Unmarshal([]byte(data["service.webhook."+service]), &svc); err != nil || svc.URL == "" {
		t.Fatalf("service.webhook.%s: %v (url %q)", service, err, svc.URL)
	}
	var tmpl struct {
		Webhook map[string]struct{ Method, Path, Body string }
	}
	if err := yaml.Unmarshal([]byte(data["template."+name]), &tmpl); err != nil {
		t.Fatalf("template.%s: %v", name, err)
	}
	hook, ok := tmpl.Webhook[service]
	if !ok {
		t.Fatalf("template.%s has no webhook for the service %q", name, service)
	}
	render := func(what, s string) string {
		tp, err := template.New(what).Option("missingkey=error").Parse(s)
		if err != nil {
			t.Fatalf("template.%s %s: %v", name, what, err)
		}
		var b bytes.Buffer
		if err := tp.Execute(&b, map[string]any{"rollout": rollout}); err != nil {
			t.Fatalf("template.%s %s: %v", name, what, err)
		}
		return b.String()
	}
	n := notification{method: hook.Method, headers: map[string]string{},
		url:  strings.TrimSuffix(svc.URL, "/") + "/" + strings.TrimPrefix(render("path", hook.Path), "/"),
		body: render("body", hook.Body)}
	for _, h := range svc.Headers {
		v := h.Value
		for k, s := range secrets {
			v = strings.ReplaceAll(v, "$"+k, s)
		}
		n.headers[h.Name] = v
	}
	return n
}

func (n notification) send(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	u := base + n.url[strings.Index(n.url, "/api/"):]
	req, err := http.NewRequest(n.method, u, strings.NewReader(n.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range n.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("vigil's answer to the notification is not JSON: %s", raw)
	}
	return resp.StatusCode, out
}

// Argo Rollouts' abort of a rollout cancels vigil's verification of it: the Rollout
// subscribes to on-rollout-aborted, the trigger sends vigil-cancel, and the webhook it
// renders from the Rollout's annotations, sent to a real agent, cancels the deploy of that
// version (whose analysis then reads Inconclusive), and no other.
func TestArgoRolloutsAbortCancelsTheVerification(t *testing.T) {
	cm := k8sObjects(t, "notifications.yaml", yamlFile(t, "argo-rollouts/notifications.yaml"))["ConfigMap/argo-rollouts-notification-configmap"]
	rollout := k8sObjects(t, "rollout.yaml", yamlFile(t, "argo-rollouts/rollout.yaml"))["Rollout/shop"]
	tmpl := k8sObjects(t, "analysistemplate.yaml", yamlFile(t, "argo-rollouts/analysistemplate.yaml"))["AnalysisTemplate/vigil-verdict"]
	if cm == nil || rollout == nil || tmpl == nil {
		t.Fatal("want ConfigMap argo-rollouts-notification-configmap, Rollout shop and AnalysisTemplate vigil-verdict")
	}
	data := map[string]string{}
	for k, v := range get(cm, "data").(map[string]any) {
		data[k] = str(v)
	}
	var trigger []struct{ Send []string }
	if err := yaml.Unmarshal([]byte(data["trigger.on-rollout-aborted"]), &trigger); err != nil || len(trigger) != 1 || !strings.Contains(strings.Join(trigger[0].Send, ","), "vigil-cancel") {
		t.Fatalf("trigger.on-rollout-aborted %q (%v): want it to send vigil-cancel", data["trigger.on-rollout-aborted"], err)
	}
	annotations := get(rollout, "metadata", "annotations").(map[string]any)
	if _, ok := annotations["notifications.argoproj.io/subscribe.on-rollout-aborted.vigil"]; !ok {
		t.Fatalf("the Rollout does not subscribe to on-rollout-aborted with the vigil webhook: %v", annotations)
	}
	service := str(annotations["vigil.dev/service"])

	s := startShop(t)
	agent := startAgent(t, agentConfig(service, "interval: 1m, count: 2"), s)
	// The Rollout as the controller hands it to the engine: in its namespace, with the
	// version the pipeline annotated before the new image.
	aborted := func(version string) map[string]any {
		r := renderArgs(t, rollout, nil).(map[string]any) // a copy
		md := r["metadata"].(map[string]any)
		md["namespace"] = "shop"
		md["annotations"].(map[string]any)["vigil.dev/version"] = version
		return r
	}
	notify := func(version string) (int, map[string]any) {
		n := renderNotification(t, data, "vigil", "vigil-cancel", aborted(version), map[string]string{"vigil-api-token": agentToken})
		return n.send(t, agent.url)
	}

	v2 := register(t, agent, service, "v2")
	if status, out := notify("v2"); status != http.StatusOK || out["id"] != v2 || out["status"] != "cancelled" ||
		out["reason"] != "cancelled: Argo Rollouts aborted rollout shop/shop" {
		t.Fatalf("the abort of v2: %d %v; want 200, deploy %s cancelled, with the rollout named", status, out, v2)
	}
	if status, out := notify("v2"); status != http.StatusOK || out["status"] != "cancelled" {
		t.Errorf("the abort notified again: %d %v; want 200, cancelled, as the first time", status, out)
	}
	metric := renderArgs(t, get(tmpl, "spec", "metrics", 0), map[string]string{"deploy-id": v2, "vigil-url": agent.url, "api-token": agentToken}).(map[string]any)
	if phase, result := measure(t, metric); phase != "Inconclusive" || result != "cancelled" {
		t.Errorf("the analysis of the cancelled deploy: %s (%v); want Inconclusive (cancelled)", phase, result)
	}

	// A late or repeated abort of v2 cancels nothing of v3's, and one of a version never
	// registered (aborted before the pipeline registered it) is a 404.
	v3 := register(t, agent, service, "v3")
	notify("v2")
	if status, out := notify("v4"); status != http.StatusNotFound || !strings.Contains(str(out["error"]), "the one verifying is v3") {
		t.Errorf("the abort of an unregistered version: %d %v; want 404 naming v3", status, out)
	}
	metric = renderArgs(t, get(tmpl, "spec", "metrics", 0), map[string]string{"deploy-id": v3, "vigil-url": agent.url, "api-token": agentToken}).(map[string]any)
	web := metric["provider"].(map[string]any)["web"].(map[string]any)
	web["url"] = strings.Split(str(web["url"]), "?")[0] // no wait: only the status now
	if phase, result := measure(t, metric); phase != "Inconclusive" || result != "verifying" {
		t.Errorf("v3 after the aborts of v2 and v4: %s (%v); want still verifying", phase, result)
	}
}
