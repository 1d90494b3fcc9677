package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
)

// argoArg is an AnalysisTemplate argument placeholder, as Argo Rollouts resolves them.
var argoArg = regexp.MustCompile(`\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}`)

// renderArgs replaces the placeholders in every string of v; an argument nobody gives a
// value is an error, as when Argo Rollouts creates the AnalysisRun.
func renderArgs(t *testing.T, v any, args map[string]string) any {
	t.Helper()
	switch x := v.(type) {
	case string:
		return argoArg.ReplaceAllStringFunc(x, func(m string) string {
			name := argoArg.FindStringSubmatch(m)[1]
			val, ok := args[name]
			if !ok {
				t.Errorf("the template uses {{args.%s}}, which has no value", name)
			}
			return val
		})
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = renderArgs(t, e, args)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = renderArgs(t, e, args)
		}
		return out
	}
	return v
}

// jsonPath evaluates the subset of Kubernetes JSONPath the template uses: {$.a.b} or {.a.b}.
func jsonPath(t *testing.T, doc any, path string) (any, bool) {
	t.Helper()
	m := regexp.MustCompile(`^\{\$?((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\}$`).FindStringSubmatch(path)
	if m == nil {
		t.Fatalf("jsonPath %q: this test evaluates only {$.field.field}", path)
	}
	for _, f := range strings.Split(m[1][1:], ".") {
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil, false
		}
		if doc, ok = obj[f]; !ok {
			return nil, false
		}
	}
	return doc, true
}

// measure takes one measurement the way Argo Rollouts' web provider does
// (metricproviders/webmetric): the rendered URL, method and headers, a client timeout of
// timeoutSeconds, non-2xx is an Error, the jsonPath picks the result, failureCondition and
// successCondition (expr) decide, and neither is Inconclusive.
func measure(t *testing.T, metric map[string]any) (phase string, result any) {
	t.Helper()
	web := get(metric, "provider", "web").(map[string]any)
	method := str(web["method"])
	if method == "" {
		method = "GET"
	}
	req, err := http.NewRequest(method, str(web["url"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range list(web["headers"]) {
		req.Header.Set(str(get(h, "key")), str(get(h, "value")))
	}
	timeout := 10 * time.Second
	if s := str(web["timeoutSeconds"]); s != "" {
		n, _ := strconv.Atoi(s)
		timeout = time.Duration(n) * time.Second
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return "Error", err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return "Error", fmt.Sprintf("received non 2xx response code: %d", resp.StatusCode)
	}
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("vigil's answer is not JSON: %s", body)
	}
	result, ok := jsonPath(t, doc, str(web["jsonPath"]))
	if !ok {
		return "Error", "Could not find JSONPath in body"
	}
	eval := func(cond string) bool {
		if cond == "" {
			return false
		}
		out, err := expr.Eval(cond, map[string]any{"result": result})
		if err != nil {
			t.Fatalf("condition %q: %v", cond, err)
		}
		return out == true
	}
	switch {
	case eval(str(metric["failureCondition"])):
		return "Failed", result
	case eval(str(metric["successCondition"])):
		return "Successful", result
	}
	return "Inconclusive", result
}

// register is the pipeline's pre-step: POST /api/v1/deploys once the canary is up.
func register(t *testing.T, agent *proc, service, version string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", agent.url+"/api/v1/deploys",
		strings.NewReader(fmt.Sprintf(`{"service":%q,"version":%q,"environment":"prod"}`, service, version)))
	req.Header.Set("Authorization", "Bearer "+agentToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 202 {
		t.Fatalf("registering %s %s: %d %v", service, version, resp.StatusCode, err)
	}
	return out.ID
}

func TestArgoRolloutsAnalysisTemplate(t *testing.T) {
	objs := k8sObjects(t, "analysistemplate.yaml", yamlFile(t, "argo-rollouts/analysistemplate.yaml"))
	tmpl := objs["AnalysisTemplate/vigil-verdict"]
	rollout := k8sObjects(t, "rollout.yaml", yamlFile(t, "argo-rollouts/rollout.yaml"))["Rollout/shop"]
	if tmpl == nil || rollout == nil {
		t.Fatal("want AnalysisTemplate vigil-verdict and Rollout shop")
	}

	// The Rollout pauses (the pipeline registers the deploy there) before the analysis,
	// which gets the deploy id from the annotation the pipeline sets.
	steps := list(get(rollout, "spec", "strategy", "canary", "steps"))
	analysis := -1
	for i, s := range steps {
		if get(s, "analysis") != nil {
			analysis = i
		}
	}
	if analysis < 1 || get(steps[analysis-1], "pause") == nil || get(steps[analysis-1], "pause", "duration") != nil {
		t.Fatalf("the step before the analysis must be an indefinite pause (the registration point): %v", steps)
	}
	step := get(steps[analysis], "analysis")
	if str(get(step, "templates", 0, "templateName")) != "vigil-verdict" {
		t.Errorf("the analysis step runs %v", get(step, "templates"))
	}
	rolloutArgs := map[string]bool{}
	for _, a := range list(get(step, "args")) {
		rolloutArgs[str(get(a, "name"))] = true
		if str(get(a, "name")) == "deploy-id" && !strings.Contains(str(get(a, "valueFrom", "fieldRef", "fieldPath")), "vigil.dev/deploy-id") {
			t.Errorf("deploy-id comes from %v; want the vigil.dev/deploy-id annotation", get(a, "valueFrom"))
		}
	}
	for _, a := range list(get(tmpl, "spec", "args")) {
		if get(a, "value") == nil && get(a, "valueFrom") == nil && !rolloutArgs[str(get(a, "name"))] {
			t.Errorf("the template needs %s and the Rollout does not give it", get(a, "name"))
		}
	}
	metric := get(tmpl, "spec", "metrics", 0).(map[string]any)
	if str(metric["count"]) != "1" {
		t.Errorf("count %v: one measurement is one verdict", metric["count"])
	}
	// Argo ends a metric Inconclusive at its first inconclusive measurement past
	// inconclusiveLimit, and Successful once count is reached whatever came under it: a
	// limit would let "verifying" answers add up to a pass.
	if l := str(metric["inconclusiveLimit"]); l != "" && l != "0" {
		t.Errorf("inconclusiveLimit %s: a verifying answer must end the analysis Inconclusive, not count towards a pass", l)
	}

	s := startShop(t)
	// versioned reads the version each answer names: a deploy of a version the shop does
	// not serve gets no answer of its own, and its verdict is inconclusive.
	config := strings.Replace(agentConfig("shop", "interval: 200ms, count: 2"), "services:\n", `  - name: versioned
    kind: http
    every: 1h
    request: {url: "${SHOP}/healthz"}
    served_version: {header: X-App-Version}
services:
`, 1) + `
  slow:
    checks: [health]
    verify: {interval: 1m, count: 2}
  fresh:
    checks: [versioned]
    verify: {interval: 200ms, count: 2}
`
	agent := startAgent(t, config, s)
	// What the AnalysisRun holds once Argo resolved the args: the token from the Secret,
	// vigil's URL as the controller reaches it, the id from the annotation.
	run := func(id, wait string) (string, any) {
		m := renderArgs(t, metric, map[string]string{"deploy-id": id, "vigil-url": agent.url, "api-token": agentToken}).(map[string]any)
		u := str(get(m, "provider", "web", "url"))
		if !strings.HasPrefix(u, agent.url+"/api/v1/deploys/"+id+"?wait=") {
			t.Fatalf("the rendered URL is %s", u)
		}
		if wait != "" {
			// Only to see a verification outlast the wait without waiting 9 minutes.
			m["provider"].(map[string]any)["web"].(map[string]any)["url"] = strings.Split(u, "?")[0] + "?wait=" + wait
		}
		return measure(t, m)
	}

	if phase, result := run(register(t, agent, "shop", "v1"), ""); phase != "Successful" || result != "passed" {
		t.Errorf("a good deploy: %s (%v); want Successful (passed)", phase, result)
	}
	s.deploy(t, "v2")
	if phase, result := run(register(t, agent, "shop", "v2"), ""); phase != "Failed" || result != "failed" {
		t.Errorf("a broken deploy: %s (%v); want Failed (failed)", phase, result)
	}
	if phase, result := run(register(t, agent, "slow", "v2"), "1s"); phase != "Inconclusive" || result != "verifying" {
		t.Errorf("a verification longer than the wait: %s (%v); want Inconclusive (verifying), so the rollout pauses", phase, result)
	}
	// Inconclusive and superseded match neither condition: Inconclusive, and the rollout
	// pauses for a person, as the template says, never aborts.
	if phase, result := run(register(t, agent, "fresh", "v9"), ""); phase != "Inconclusive" || result != "inconclusive" {
		t.Errorf("an inconclusive verdict: %s (%v); want Inconclusive (inconclusive)", phase, result)
	}
	older := register(t, agent, "slow", "v3")
	register(t, agent, "slow", "v4")
	if phase, result := run(older, ""); phase != "Inconclusive" || result != "superseded" {
		t.Errorf("a superseded deploy: %s (%v); want Inconclusive (superseded)", phase, result)
	}
	m := renderArgs(t, metric, map[string]string{"deploy-id": older, "vigil-url": "http://127.0.0.1:1", "api-token": agentToken}).(map[string]any)
	if phase, _ := measure(t, m); phase != "Error" {
		t.Errorf("vigil unreachable: %s; want Error (retried up to consecutiveErrorLimit)", phase)
	}
	if phase, _ := run("20260101-000000-00000000", ""); phase != "Error" {
		t.Errorf("an unknown deploy id: %s; want Error (vigil answers 404)", phase)
	}
	m = renderArgs(t, metric, map[string]string{"deploy-id": "x", "vigil-url": agent.url, "api-token": "wrong"}).(map[string]any)
	if phase, _ := measure(t, m); phase != "Error" {
		t.Errorf("a wrong token: %s; want Error", phase)
	}
}

func TestFlaggerCanary(t *testing.T) {
	canary := k8sObjects(t, "canary.yaml", yamlFile(t, "flagger/canary.yaml"))["Canary/podinfo"]
	if canary == nil {
		t.Fatal("want Canary podinfo")
	}
	hook := get(canary, "spec", "analysis", "webhooks", 0).(map[string]any)
	if str(hook["type"]) != "pre-rollout" {
		t.Errorf("webhook type %v", hook["type"])
	}
	u, err := url.Parse(str(hook["url"]))
	if err != nil {
		t.Fatal(err)
	}
	timeout, err := time.ParseDuration(str(hook["timeout"]))
	if err != nil {
		t.Fatalf("timeout %v: %v", hook["timeout"], err)
	}
	wait, err := time.ParseDuration(u.Query().Get("wait"))
	if err != nil || wait >= timeout {
		t.Errorf("?wait=%s must be a duration under the webhook's timeout %s", u.Query().Get("wait"), timeout)
	}
	if pw, _ := u.User.Password(); u.Path != "/api/v1/flagger" || pw != "VIGIL_API_TOKEN" {
		t.Errorf("the webhook URL %s: want /api/v1/flagger with the token as the user info's password", u.Redacted())
	}
	metadata := map[string]string{}
	for k, v := range get(hook, "metadata").(map[string]any) {
		metadata[k] = str(v)
	}
	if metadata["type"] != str(hook["type"]) {
		t.Errorf("metadata.type %q: Flagger's payload does not say the hook's type, so the metadata must, as %q", metadata["type"], hook["type"])
	}

	s := startShop(t)
	agent := startAgent(t, agentConfig(metadata["service"], "interval: 200ms, count: 2"), s)
	// The example's URL, pointed at this agent with its token: Flagger's HTTP client sends
	// the user info as basic auth, and Content-Type: application/json, nothing else.
	target, _ := url.Parse(agent.url)
	u.Host = target.Host
	u.User = url.UserPassword(u.User.Username(), agentToken)
	call := func(checksum string) (int, map[string]any) {
		// Flagger's CanaryWebhookPayload: these five fields, the metadata as the Canary has it.
		body, _ := json.Marshal(map[string]any{"name": get(canary, "metadata", "name"), "namespace": get(canary, "metadata", "namespace"),
			"phase": "Progressing", "checksum": checksum, "metadata": metadata})
		req, _ := http.NewRequest("POST", u.String(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: timeout}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if status, out := call("7c9f8c8b4"); status != 200 || out["verdict"] != "passed" {
		t.Errorf("the good canary: %d %v; want 200 passed within ?wait", status, out)
	}
	s.deploy(t, "v2")
	if status, out := call("5d8fb6bdf5"); status < 300 || out["verdict"] != "failed" {
		t.Errorf("the broken canary: %d %v; want a non-2xx failed", status, out)
	}
}
