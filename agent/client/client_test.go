package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
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
	_, err = c.RegisterDeploy(context.Background(), DeployRequest{Service: "wbe", Version: "v1"})
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
