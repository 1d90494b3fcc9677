package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// send sends a request with the headers given (an empty value removes one), following no
// redirect, and returns the answer with its body read.
func send(t *testing.T, method, url, body string, header ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// HEAD is answered wherever GET is, OPTIONS lists the methods, and any other method is a
// JSON 405 that names them in Allow.
func TestAPIMethods(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", withToken(webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 2"}.String()))
	auth := []string{"Authorization", "Bearer s3cret-token"}
	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"HEAD", "/api/v1/checks", 200, ""},
		{"HEAD", "/api/v1/deploys?limit=1", 200, ""},
		{"OPTIONS", "/api/v1/deploys", 204, "GET, HEAD, OPTIONS, POST"},
		{"OPTIONS", "/api/v1/checks/home/run", 204, "OPTIONS, POST"},
		{"PUT", "/api/v1/deploys", 405, "GET, HEAD, OPTIONS, POST"},
		{"GET", "/api/v1/checks/home/run", 405, "OPTIONS, POST"},
		{"PATCH", "/api/v1/silences/abc", 405, "DELETE, OPTIONS"},
		{"HEAD", "/", 200, ""},
		{"HEAD", "/healthz", 200, ""},
	}
	for _, tc := range cases {
		resp, body := send(t, tc.method, h.url+tc.path, "", auth...)
		if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s = %d, Allow %q; want %d, Allow %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.status, tc.allow)
		}
		if tc.method == "HEAD" && body != "" {
			t.Errorf("HEAD %s answered a body: %.80q", tc.path, body)
		}
		if tc.status == 405 {
			var e apiError
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Status != 405 || !strings.Contains(e.Error, tc.method+" is not allowed here") {
				t.Errorf("%s %s: a 405 that is not the JSON error: %q", tc.method, tc.path, body)
			}
		}
	}
	// HEAD still needs the token.
	if resp, _ := send(t, "HEAD", h.url+"/api/v1/checks", ""); resp.StatusCode != 401 {
		t.Errorf("HEAD without the token = %d, want 401", resp.StatusCode)
	}
}

// A page on another site that a browser on the SRE's machine opens cannot make the agent
// act: no token on a loopback agent, or the token the browser keeps for the status page,
// would otherwise let it run checks and add silences. curl and vigil send no Origin.
func TestCrossSiteRequestsAreRefused(t *testing.T) {
	for _, token := range []string{"", "s3cret-token"} {
		tg := newTarget(t)
		yaml := webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 2"}.String()
		var auth []string
		if token != "" {
			yaml = withToken(yaml)
			auth = []string{"Authorization", "Basic " + "OnMzY3JldC10b2tlbg=="} // ":s3cret-token", as a browser keeps it
		}
		h := startAgent(t, "", yaml)
		silence := `{"check":"home","duration":"1h","reason":"x"}`
		cross := []struct {
			method, path, body string
			header             []string
		}{
			{"POST", "/api/v1/checks/home/run", "", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}},
			{"POST", "/api/v1/checks/home/run", "", []string{"Origin", "https://evil.example"}},
			{"POST", "/api/v1/checks/home/run", "", []string{"Origin", "null"}},
			{"POST", "/api/v1/silences", silence, []string{"Sec-Fetch-Site", "same-site", "Content-Type", "application/json"}},
			{"DELETE", "/api/v1/silences/abc", "", []string{"Sec-Fetch-Site", "cross-site"}},
			{"POST", "/api/v1/deploys", `{"service":"web","version":"v2"}`, []string{"Origin", "http://localhost.evil.example"}},
		}
		for _, c := range cross {
			resp, body := send(t, c.method, h.url+c.path, c.body, append(slices.Clone(auth), c.header...)...)
			var e apiError
			if resp.StatusCode != 403 || json.Unmarshal([]byte(body), &e) != nil || e.Status != 403 || !strings.Contains(e.Error, "another site") {
				t.Errorf("token %q: %s %s with %v = %d %.200q; want a JSON 403", token, c.method, c.path, c.header, resp.StatusCode, body)
			}
		}
		if n := tg.hits.Load(); n != 0 {
			t.Errorf("token %q: cross-site requests ran the check %d times", token, n)
		}
		if _, out := h.request("GET", "/api/v1/silences", ""); len(out["silences"].([]any)) != 0 {
			t.Errorf("token %q: a cross-site request added a silence: %v", token, out)
		}
		if _, out := h.request("GET", "/api/v1/deploys", ""); len(out["deploys"].([]any)) != 0 {
			t.Errorf("token %q: a cross-site request registered a deploy: %v", token, out)
		}
		// The agent's own pages, curl and reads from anywhere still work.
		host := strings.TrimPrefix(h.url, "http://")
		for _, hdr := range [][]string{nil, {"Sec-Fetch-Site", "same-origin"}, {"Origin", "http://" + host}, {"Sec-Fetch-Site", "none"}} {
			resp, body := send(t, "POST", h.url+"/api/v1/silences", silence, append(append(slices.Clone(auth), "Content-Type", "application/json"), hdr...)...)
			if resp.StatusCode != 201 {
				t.Errorf("token %q: a silence with %v = %d %s; want 201", token, hdr, resp.StatusCode, body)
			}
		}
		if resp, _ := send(t, "GET", h.url+"/api/v1/checks", "", append(slices.Clone(auth), "Sec-Fetch-Site", "cross-site")...); resp.StatusCode != 200 {
			t.Errorf("token %q: a cross-site GET = %d; want 200 (reads act on nothing)", token, resp.StatusCode)
		}
	}
}
