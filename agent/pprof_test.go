package agent

import (
	"net/http"
	"testing"
)

// Profiles are served only when asked for, and only with the API token.
func TestPprofIsOffByDefaultAndBehindTheToken(t *testing.T) {
	tg := newTarget(t)
	yaml := withToken(webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 2"}.String())
	get := func(url, token string) int {
		req, _ := http.NewRequest("GET", url+"/debug/pprof/cmdline", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	off := startAgent(t, "", yaml)
	if got := get(off.url, off.token); got != http.StatusNotFound {
		t.Errorf("without --pprof: GET /debug/pprof/cmdline = %d, want 404", got)
	}
	l := launch(t, t.TempDir(), yaml, Options{Pprof: true})
	t.Cleanup(func() { _ = l.stop() })
	if got := get(l.url, ""); got != http.StatusUnauthorized {
		t.Errorf("with --pprof, no token: %d, want 401", got)
	}
	if got := get(l.url, l.cfg.Agent.APIToken.Value()); got != http.StatusOK {
		t.Errorf("with --pprof and the token: %d, want 200", got)
	}
	// Everything else is still served, through the same handler as without it.
	resp, err := http.Get(l.url + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("with --pprof, /healthz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}
