package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func withToken(yaml string) string { return "agent: {api_token: s3cret-token}\n" + yaml }

func TestAPIAuthAndBadInput(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", withToken(webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 2"}.String()))
	big := `{"service":"web","version":"` + strings.Repeat("v", 2<<20) + `"}`
	cases := []struct {
		name, method, path, body string
		header                   []string
		status                   int
		want                     string
	}{
		{"no token", "POST", "/api/v1/deploys", `{"service":"web","version":"v2"}`, []string{"Authorization", ""}, 401, "missing credentials"},
		{"wrong token", "POST", "/api/v1/deploys", `{"service":"web","version":"v2"}`, []string{"Authorization", "Bearer s3cret-tokeN"}, 401, "wrong token"},
		{"token with another scheme", "GET", "/api/v1/checks", "", []string{"Authorization", "Token s3cret-token"}, 401, "missing credentials"},
		{"oversized body", "POST", "/api/v1/deploys", big, nil, 413, "larger than 1048576 bytes"},
		{"malformed JSON", "POST", "/api/v1/deploys", `{"service":"web",`, nil, 400, "malformed JSON"},
		{"not an object", "POST", "/api/v1/deploys", `["web"]`, nil, 400, "must be a JSON object"},
		{"two objects", "POST", "/api/v1/deploys", `{"service":"web","version":"v2"}{}`, nil, 400, "send one object"},
		{"empty body", "POST", "/api/v1/deploys", ``, nil, 400, "empty body"},
		{"unknown field", "POST", "/api/v1/deploys", `{"service":"web","version":"v2","url":"http://evil.example"}`, nil, 400, `unknown field "url"`},
		{"wrong type", "POST", "/api/v1/deploys", `{"service":"web","version":2}`, nil, 400, `field "version" must be string`},
		{"unknown service", "POST", "/api/v1/deploys", `{"service":"wbe","version":"v2"}`, nil, 422, `unknown service "wbe"; did you mean "web"?`},
		{"no version", "POST", "/api/v1/deploys", `{"service":"web"}`, nil, 400, "version is required"},
		{"no service", "POST", "/api/v1/deploys", `{"version":"v2"}`, nil, 400, "name the service"},
		{"not JSON", "POST", "/api/v1/deploys", `service=web`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "send JSON"},
		{"unknown deploy", "GET", "/api/v1/deploys/nope", "", nil, 404, `no deploy "nope"`},
		{"bad wait", "GET", "/api/v1/deploys/nope?wait=forever", "", nil, 400, "wait must be a duration"},
		{"wait too long", "GET", "/api/v1/deploys/nope?wait=24h", "", nil, 400, "wait must be a duration"},
		{"wrong method", "DELETE", "/api/v1/deploys", "", nil, 405, "DELETE is not allowed here"},
		{"unknown endpoint", "GET", "/api/v1/nothing", "", nil, 404, "no such API endpoint"},
		{"unknown check", "POST", "/api/v1/checks/hom/run", "", nil, 404, `unknown check "hom"; did you mean "home"?`},
		{"silence without reason", "POST", "/api/v1/silences", `{"check":"home","duration":"1h"}`, nil, 400, "say why"},
		{"silence of both", "POST", "/api/v1/silences", `{"check":"home","service":"web","duration":"1h","reason":"x"}`, nil, 400, "exactly one"},
		{"silence too long", "POST", "/api/v1/silences", `{"check":"home","duration":"9000h","reason":"x"}`, nil, 400, "at most"},
		{"silence of 30 days and a minute", "POST", "/api/v1/silences", `{"check":"home","duration":"720h1m","reason":"x"}`, nil, 400, "at most 720h0m0s"},
		{"silence of nothing", "POST", "/api/v1/silences", `{"check":"nope","duration":"1h","reason":"x"}`, nil, 422, `unknown check "nope"`},
		{"bad outbox state", "GET", "/api/v1/outbox?state=lost", "", nil, 400, "state must be one of"},
		{"bad limit", "GET", "/api/v1/outbox?limit=-1", "", nil, 400, "limit must be"},
		{"a key twice", "POST", "/api/v1/deploys", `{"service":"web","service":"api","version":"v2"}`, nil, 400, `field "service" is given twice`},
		{"a key twice in other case", "POST", "/api/v1/deploys", `{"service":"web","Version":"v2","version":"v3"}`, nil, 400, `field "version" is given twice`},
		{"a key twice in a link", "POST", "/api/v1/deploys", `{"service":"web","version":"v2","links":[{"name":"CI","url":"https://ci.example/1","url":"https://evil.example"}]}`, nil, 400, `field "url" is given twice`},
		{"garbage after the object", "POST", "/api/v1/deploys", `{"service":"web","version":"v2"} garbage`, nil, 400, "send one object"},
		{"truncated body", "POST", "/api/v1/deploys", `{"service":"web","vers`, nil, 400, "malformed JSON"},
		{"token in the query", "GET", "/api/v1/checks?access_token=s3cret-token&token=s3cret-token", "", []string{"Authorization", ""}, 401, "missing credentials"},
		{"limit twice", "GET", "/api/v1/deploys?limit=5&limit=-1", "", nil, 400, "give limit once"},
		{"limit of 10^18", "GET", "/api/v1/deploys?limit=1000000000000000000", "", nil, 400, "limit must be"},
		{"unknown status", "GET", "/api/v1/deploys?status=faild", "", nil, 400, "status must be one of verifying, passed"},
		{"service and status", "GET", "/api/v1/deploys?service=web&status=failed", "", nil, 400, "not both"},
		{"state twice", "GET", "/api/v1/outbox?state=pending&state=lost", "", nil, 400, "give state once"},
		{"wait twice", "GET", "/api/v1/deploys/nope?wait=1s&wait=10m", "", nil, 400, "give wait once"},
		{"retry a live entry", "POST", "/api/v1/outbox/12345/retry", "", nil, 404, "no dead-lettered outbox entry"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := h.request(tc.method, tc.path, tc.body, tc.header...)
			if status != tc.status {
				t.Errorf("status %d, want %d (%v)", status, tc.status, out)
			}
			msg, _ := out["error"].(string)
			if !strings.Contains(msg, tc.want) || out["status"] != float64(tc.status) {
				t.Errorf("error %q (status field %v); want it to contain %q", msg, out["status"], tc.want)
			}
		})
	}
	// Nothing above registered a deploy.
	if _, out := h.request("GET", "/api/v1/deploys", ""); len(out["deploys"].([]any)) != 0 {
		t.Errorf("bad requests registered deploys: %v", out["deploys"])
	}
}

func TestAPIHappyPaths(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", withToken(webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 2"}.String()))

	status, out := h.request("POST", "/api/v1/checks/home/run", "")
	if status != 200 || out["outcome"] != "pass" || out["run_url"] == "" {
		t.Fatalf("run now: %d %v", status, out)
	}
	runPath := strings.TrimPrefix(out["run_url"].(string), h.url)
	if resp, err := http.Get(h.url + runPath); err != nil || resp.StatusCode != 200 {
		t.Errorf("the run page %s: %v %v", runPath, resp, err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(body, []byte("home")) || !bytes.Contains(body, []byte(`id="outcome">pass<`)) {
			t.Errorf("the run page does not show the run:\n%s", body)
		}
	}
	_, out = h.request("GET", "/api/v1/checks", "")
	list := out["checks"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["last"].(map[string]any)["outcome"] != "pass" {
		t.Errorf("checks: %v", out)
	}
	status, out = h.request("POST", "/api/v1/silences", `{"service":"web","duration":"2h","reason":"db migration","created_by":"ana"}`)
	if status != 201 || out["id"] == "" {
		t.Fatalf("silence: %d %v", status, out)
	}
	id := out["id"].(string)
	if _, out = h.request("GET", "/api/v1/silences", ""); len(out["silences"].([]any)) != 1 {
		t.Errorf("silences: %v", out)
	}
	if status, _ = h.request("DELETE", "/api/v1/silences/"+id, ""); status != 204 {
		t.Errorf("delete silence: %d", status)
	}

	// The long-poll ends at its wait when nothing changes, with the deploy still verifying.
	dep := h.deploy("web", "v9")
	start := time.Now()
	status, out = h.request("GET", "/api/v1/deploys/"+dep+"?wait=1s", "")
	if status != 200 || out["status"] != "verifying" || time.Since(start) < 900*time.Millisecond {
		t.Errorf("long-poll: %d %v after %s; want verifying after about 1s", status, out["status"], time.Since(start))
	}

	// Health, readiness and metrics need no token; the status page by default neither.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/", "/checks/home", "/deploys/" + dep} {
		resp, err := http.Get(h.url + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d: %s", p, resp.StatusCode, body)
		}
		if p == "/metrics" {
			for _, want := range []string{`probe_success{check="home",kind="http",location="local"} 1`, `vigil_check_runs_total{check="home",kind="http",result="pass"} `,
				"vigil_config_last_reload_successful 1", "vigil_deploys_verifying 1"} {
				if !bytes.Contains(body, []byte(want)) {
					t.Errorf("/metrics lacks %q", want)
				}
			}
		}
	}
}

// The deploy-event decoder takes anything a caller sends without panicking, and accepts
// only one well-formed object with known fields.
func FuzzDecodeDeployRequest(f *testing.F) {
	for _, s := range []string{`{"service":"web","version":"v2"}`, `{"services":["a","b"],"version":"1","environment":"prod","commit":"abc"}`,
		`{"service":"web","version":"v2","extra":1}`, `[]`, `null`, `{"service":`, `{"service":"\u0000"}`, `{}{}`, "\xff\xfe"} {
		f.Add([]byte(s))
	}
	known := map[string]bool{"service": true, "services": true, "version": true, "environment": true, "commit": true}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req DeployRequest
		if err := decodeJSON(bytes.NewReader(data), &req); err != nil {
			if err.Error() == "" {
				t.Fatal("an error with no message")
			}
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(data, &obj); err != nil {
			t.Fatalf("accepted what is not one JSON object: %q (%v)", data, err)
		}
		for k := range obj {
			if !known[strings.ToLower(k)] {
				t.Fatalf("accepted the unknown field %q in %q", k, data)
			}
		}
	})
}

// An answer that cannot be encoded is a 500 that says so, never a 200 with an empty body.
func TestWriteJSONThatCannotBeEncoded(t *testing.T) {
	w := httptest.NewRecorder()
	writeJSON(w, http.StatusOK, map[string]any{"value": make(chan int)})
	var e apiError
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != http.StatusInternalServerError || e.Status != 500 ||
		!strings.Contains(e.Error, "could not encode") {
		t.Errorf("%d %s (%v)", w.Code, w.Body, err)
	}
}

// The deploy list is newest first, cut at limit, and filtered by service or status.
func TestListDeploysFiltersAndLimits(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", withToken(webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 2"}.String()))
	var ids []string
	for _, v := range []string{"v1", "v2", "v3"} {
		ids = append(ids, h.deploy("web", v))
	}
	list := func(query string) []string {
		status, out := h.request("GET", "/api/v1/deploys"+query, "")
		if status != 200 {
			t.Fatalf("GET /api/v1/deploys%s = %d %v", query, status, out)
		}
		var got []string
		for _, d := range out["deploys"].([]any) {
			got = append(got, d.(map[string]any)["id"].(string))
		}
		return got
	}
	for query, want := range map[string][]string{
		"":                   {ids[2], ids[1], ids[0]},
		"?limit=2":           {ids[2], ids[1]},
		"?status=superseded": {ids[1], ids[0]},
		"?status=verifying":  {ids[2]},
		"?service=web":       {ids[2], ids[1], ids[0]},
	} {
		if got := list(query); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("GET /api/v1/deploys%s = %v, want %v", query, got, want)
		}
	}
	// A service the config does not have, and that has no deploys, is a typo: said so, not
	// answered with an empty list (TestAnUnknownNameIsAnsweredWithTheNearest).
	if status, out := h.request("GET", "/api/v1/deploys?service=api", ""); status != 422 || !strings.Contains(fmt.Sprint(out["error"]), `unknown service "api"`) {
		t.Errorf("GET /api/v1/deploys?service=api = %d %v; want 422 naming the unknown service", status, out)
	}
}
