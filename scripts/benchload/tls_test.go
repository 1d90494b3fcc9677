package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// The tls scenario's target: its certificate verifies for 127.0.0.1 against itself alone,
// a client that trusts it speaks HTTP/2 as the floor's does, and one that does not is refused.
func TestTargetCertificate(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, err := newTargetCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(targetHandler())
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()

	tc, err := trusting(certPath)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL + peerPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" || resp.ProtoMajor != 2 {
		t.Fatalf("%s %q over %s; want 200 ok over HTTP/2", resp.Status, body, resp.Proto)
	}
	targetCA = certPath
	defer func() { targetCA = "" }()
	if n, err := served(srv.URL); err != nil || n != 1 {
		t.Fatalf("served: %d, %v; want the one request at %s", n, err, peerPath)
	}
	if _, err := (&http.Client{Transport: &http.Transport{}}).Get(srv.URL); err == nil {
		t.Fatal("a client that does not trust the certificate was answered")
	}
}

// The tls scenario refuses to measure vigil's runs over anything but HTTP/2.
func TestSpokeHTTP2(t *testing.T) {
	for vars, ok := range map[string]bool{`{"proto":"HTTP/2.0","status":200}`: true, `{"proto":"HTTP/1.1"}`: false, `{}`: false, `not json`: false} {
		b, _ := json.Marshal(row{Kind: "http", Outcome: "pass", Vars: vars})
		path := filepath.Join(t.TempDir(), "sample.json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := spokeHTTP2(path); (err == nil) != ok {
			t.Errorf("vars %s: %v", vars, err)
		}
	}
}
