package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func TestClipKeepsRunesWhole(t *testing.T) {
	s := strings.Repeat("é", 10) // 2 bytes each
	for n := 0; n <= len(s); n++ {
		if got := Clip(s, n); !utf8.ValidString(got) {
			t.Fatalf("Clip(%q, %d) = %q cuts a rune", s, n, got)
		}
	}
	if Clip("short", 10) != "short" {
		t.Error("a short string must stay as it is")
	}
}

// The client sends the token and JSON, and turns a refusal into an APIError carrying the
// agent's own message.
func TestRegisterAndRefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"bad token","status":401}`))
			return
		}
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"error":"unknown service \"wbe\"","status":422}`))
	}))
	defer srv.Close()
	c, err := New(srv.URL, "tok", "vigil-test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.RegisterDeploy(context.Background(), DeployRequest{Service: "wbe", Version: "v1"}, time.Minute, nil)
	apiErr, ok := err.(*APIError)
	if !ok || apiErr.Status != 422 || apiErr.Message != `unknown service "wbe"` {
		t.Fatalf("err = %#v", err)
	}
	if _, err := New("ftp://x", "", ""); err == nil {
		t.Error("a non-http agent URL should be refused")
	}
	if _, _, err := c.Deploy(context.Background(), "x", time.Second); err == nil {
		t.Error("a 422 answer is an error")
	}
}

// RegisterDeploy sends the deploy again, under the same key, after an answer of 502-504 or
// none, waiting as the agent's Retry-After says; any other answer ends it at once, and so
// does the end of retryFor.
func TestRegisterDeployRetries(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	answers := []int{http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusAccepted}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		status := answers[0]
		answers = answers[1:]
		mu.Unlock()
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "2")
		}
		w.WriteHeader(status)
		fmt.Fprint(w, `{"id":"d-1","error":"the store is locked"}`)
	}))
	defer srv.Close()
	c, err := New(srv.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	id, err := c.RegisterDeploy(context.Background(), DeployRequest{Service: "web", Version: "v2"}, time.Minute,
		func(_ error, wait time.Duration) { waits = append(waits, wait) })
	if err != nil || id != "d-1" {
		t.Fatalf("RegisterDeploy = %q, %v", id, err)
	}
	if len(keys) != 3 || !strings.HasPrefix(keys[0], "vigil-") || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Errorf("keys sent: %q; want one key, three times", keys)
	}
	if len(waits) != 2 || waits[0] != 2*time.Second || waits[1] != 2*time.Second {
		t.Errorf("waits: %v; want the Retry-After of 2s, then the backoff's 2s", waits)
	}

	// a 500 is an answer: not sent again
	mu.Lock()
	answers = []int{http.StatusInternalServerError, http.StatusAccepted}
	mu.Unlock()
	_, err = c.RegisterDeploy(context.Background(), DeployRequest{Service: "web", Version: "v3"}, time.Minute, nil)
	if apiErr, ok := err.(*APIError); !ok || apiErr.Status != 500 {
		t.Errorf("after a 500: %v; want it returned at once", err)
	}
	// retryFor shorter than the wait: sent once
	mu.Lock()
	answers = []int{http.StatusServiceUnavailable, http.StatusAccepted}
	mu.Unlock()
	_, err = c.RegisterDeploy(context.Background(), DeployRequest{Service: "web", Version: "v4"}, time.Second, nil)
	if apiErr, ok := err.(*APIError); !ok || apiErr.Status != 503 || apiErr.Message != "the store is locked" {
		t.Errorf("retryFor 1s, Retry-After 2s: %v; want the 503", err)
	}
}

// An agent URL read from a file or a Kubernetes secret ($VIGIL_AGENT) often ends in a
// newline, as a token does: it is the URL, not "not an http(s) URL" (exit 2 in gate).
func TestNewTrimsTheAgentURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"id":"d-1"}`))
	}))
	defer srv.Close()
	c, err := New(" "+srv.URL+"/\n", "tok\n", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Base() != srv.URL {
		t.Errorf("Base() = %q, want %q", c.Base(), srv.URL)
	}
	if id, err := c.RegisterDeploy(context.Background(), DeployRequest{Service: "web", Version: "v1"}, 0, nil); err != nil || id != "d-1" {
		t.Errorf("RegisterDeploy: %q, %v", id, err)
	}
}
