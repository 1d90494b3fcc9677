package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// POST /api/v1/deploys under an Idempotency-Key: the registration sent again answers with
// the deploy it registered, verifying or decided, and registers nothing; the key for
// another deploy of the service is refused; a malformed key is refused before anything
// is read; several services under one key are registered once each.
func TestDeployIdempotencyKey(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2"}.String()+`
  api: {checks: [home], verify: {interval: 100ms, count: 2}}
`)
	post := func(key, body string) (int, map[string]any) {
		t.Helper()
		return h.request("POST", "/api/v1/deploys", body, "Idempotency-Key", key)
	}
	status, first := post("ci-run-7.1", `{"service":"web","version":"v2","environment":"prod"}`)
	if status != http.StatusAccepted {
		t.Fatalf("first registration: %d %v", status, first)
	}
	id := first["id"].(string)
	status, again := post("ci-run-7.1", `{"service":"web","version":"v2","environment":"prod"}`)
	if status != http.StatusAccepted || again["id"] != id {
		t.Fatalf("the registration sent again: %d %v; want 202 with deploy %s", status, again, id)
	}
	if d := h.verdict(id, 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("deploy %s: %v %v; want it verified as any deploy (not superseded by its own retry)", id, d["status"], d["reason"])
	}
	status, late := post("ci-run-7.1", `{"service":"web","version":"v2","environment":"prod"}`)
	if status != http.StatusAccepted || late["id"] != id {
		t.Fatalf("sent again once decided: %d %v; want 202 with deploy %s", status, late, id)
	}
	if ds, _ := late["deploys"].([]any); len(ds) != 1 || ds[0].(map[string]any)["status"] != store.StatusPassed {
		t.Errorf("sent again once decided: %v; want the deploy as it stands, passed", late)
	}
	status, out := post("ci-run-7.1", `{"service":"web","version":"v3","environment":"prod"}`)
	if status != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(out["error"]), `the Idempotency-Key "ci-run-7.1" registered web v2 (deploy `+id+`) already`) {
		t.Errorf("the key of v2 for v3: %d %v; want 422", status, out)
	}
	// two services under one key, the second sent again with a third: each registered once
	status, both := post("ci-run-8.1", `{"services":["web","api"],"version":"v4"}`)
	if status != http.StatusAccepted {
		t.Fatalf("two services: %d %v", status, both)
	}
	status, both2 := post("ci-run-8.1", `{"services":["web","api"],"version":"v4"}`)
	if status != http.StatusAccepted || fmt.Sprint(both2["deploys"]) == "" || idsOf(both) != idsOf(both2) {
		t.Errorf("two services sent again: %d %v; want the same deploys as %v", status, both2, idsOf(both))
	}
	for _, bad := range []string{strings.Repeat("k", 256), "tab\there", "é-accent"} {
		if status, out := post(bad, `{"service":"web","version":"v5"}`); status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "Idempotency-Key must be 1 to 255 printable ASCII characters") {
			t.Errorf("key %q: %d %v; want 400", bad, status, out)
		}
	}
	// the keys of the Flagger webhook's registrations are its own: the store reads a deploy
	// under one as a canary's
	if status, out := post("flagger:d-1:5f1c", `{"service":"web","version":"v5"}`); status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), `begins with "flagger:", which vigil keeps for the Flagger webhook`) {
		t.Errorf("a key in the Flagger webhook's form: %d %v; want 400", status, out)
	}
	list, err := h.a.store.Deploys(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		var got []string
		for _, d := range list {
			got = append(got, d.Service+" "+d.Version+" "+d.Status)
		}
		t.Errorf("deploys in the store: %q; want web v2, web v4, api v4", got)
	}
}

func idsOf(answer map[string]any) string {
	var ids []string
	ds, _ := answer["deploys"].([]any)
	for _, d := range ds {
		ids = append(ids, fmt.Sprint(d.(map[string]any)["id"]))
	}
	return strings.Join(ids, ",")
}

// refusingRegistrations is a real store that refuses to register deploys while refusing is
// set, as a locked or full database does; with only set, deploys of that service alone.
type refusingRegistrations struct {
	Store
	refusing atomic.Bool
	only     string
}

func (s *refusingRegistrations) CreateDeploy(ctx context.Context, d *store.Deploy, supersede store.Superseder) ([]string, error) {
	if s.refusing.Load() && (s.only == "" || s.only == d.Service) {
		return nil, errors.New("database is locked (5)")
	}
	return s.Store.CreateDeploy(ctx, d, supersede)
}

// A registration the store cannot take now is a 503 with Retry-After, to be sent again (a
// pipeline's gate does), not a 500 that reads like a broken request. One cut off after its
// first service, sent again under its key, registers the rest and not the first again.
func TestDeployRegistrationRefusedByTheStore(t *testing.T) {
	dir := t.TempDir()
	sq := openSQLite(t, dir)
	st := &refusingRegistrations{Store: sq}
	tg := newTarget(t)
	h := startAgentWith(t, dir, webConfig{url: tg.srv.URL, verify: "interval: 100ms, count: 2"}.String()+`
  api: {checks: [home], verify: {interval: 100ms, count: 2}}
`, Options{Store: st})
	st.refusing.Store(true)
	req, _ := http.NewRequest("POST", h.url+"/api/v1/deploys", strings.NewReader(`{"service":"web","version":"v2"}`))
	req.Header.Set("Idempotency-Key", "ci-run-9")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a registration the store refused: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	status, out := h.request("POST", "/api/v1/deploys", `{"service":"web","version":"v2"}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(out["error"]), "database is locked") ||
		!strings.Contains(fmt.Sprint(out["error"]), "send it again (under an Idempotency-Key") {
		t.Fatalf("without a key: %d %v", status, out)
	}
	st.refusing.Store(false)
	status, out = h.request("POST", "/api/v1/deploys", `{"service":"web","version":"v2"}`, "Idempotency-Key", "ci-run-9")
	if status != http.StatusAccepted {
		t.Fatalf("sent again once the store takes it: %d %v", status, out)
	}

	st.only = "api"
	st.refusing.Store(true)
	body := `{"services":["web","api"],"version":"v3"}`
	if status, out := h.request("POST", "/api/v1/deploys", body, "Idempotency-Key", "ci-run-10"); status != http.StatusServiceUnavailable {
		t.Fatalf("web registered, api refused: %d %v; want 503", status, out)
	}
	st.refusing.Store(false)
	status, out = h.request("POST", "/api/v1/deploys", body, "Idempotency-Key", "ci-run-10")
	if status != http.StatusAccepted || len(out["deploys"].([]any)) != 2 {
		t.Fatalf("sent again: %d %v; want both services", status, out)
	}
	list, err := sq.Deploys(t.Context(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var v3 []string
	for _, d := range list {
		if d.Version == "v3" {
			v3 = append(v3, d.Service+" "+d.Status)
		}
	}
	if len(v3) != 2 || strings.Contains(strings.Join(v3, ","), store.StatusSuperseded) {
		t.Errorf("deploys of v3: %q; want web and api once each, none superseded", v3)
	}
}

// An Idempotency-Key is taken as it is when it is 1 to 255 printable ASCII characters, and
// refused otherwise (one header of it, never two): what is kept with a deploy and shown in
// a refusal is never a control character, however the header was written.
func FuzzIdempotencyKey(f *testing.F) {
	for _, s := range []string{"ci-run-7.1", "", " ", `"quoted"`, strings.Repeat("k", 255), strings.Repeat("k", 256), "tab\there", "\x00", "é", "\x7f"} {
		f.Add(s, false)
	}
	f.Add("a", true)
	f.Fuzz(func(t *testing.T, v string, twice bool) {
		r, _ := http.NewRequest("POST", "/api/v1/deploys", nil)
		r.Header["Idempotency-Key"] = []string{v}
		if twice {
			r.Header["Idempotency-Key"] = append(r.Header["Idempotency-Key"], v)
		}
		key, ok := idempotencyKey(r)
		printable := v != "" && len(v) <= maxIdempotencyKey && !strings.ContainsFunc(v, func(c rune) bool { return c < 0x20 || c > 0x7e })
		switch {
		case ok != (printable && !twice):
			t.Fatalf("%q (twice %v): accepted %v", v, twice, ok)
		case ok && key != v:
			t.Fatalf("%q taken as %q", v, key)
		case !ok && key != "":
			t.Fatalf("%q refused but answered %q", v, key)
		}
	})
}
