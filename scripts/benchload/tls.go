package main

// The tls scenario: the busy one against an HTTPS target, as most production targets are.
// Go's client speaks HTTP/2 to it, as vigil's transport, cloudprober's and the floor's all
// attempt it: each of them trusts the target's self-signed certificate through its own
// setting (vigil's request.tls.ca_file, cloudprober's tls_config.ca_cert_file, the floor's
// -ca), so nothing skips verification.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-monitor/vigil/internal/selfsigned"
)

// newTargetCert writes a self-signed certificate for 127.0.0.1, valid for a day, into dir:
// cert.pem (the target's certificate, and the authority every peer trusts) and key.pem.
func newTargetCert(dir string) (certPath, keyPath string, err error) {
	certPEM, keyPEM, err := selfsigned.Loopback("benchload target")
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, os.WriteFile(keyPath, keyPEM, 0o600)
}

// serveTLS serves h over TLS (and HTTP/2) with the certificate in certPath and keyPath,
// and prints its URL.
func serveTLS(h http.Handler, certPath, keyPath string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("https://%s/\n", ln.Addr())
	return (&http.Server{Handler: h}).ServeTLS(ln, certPath, keyPath)
}

// trusting returns a TLS config that trusts the certificate in caPath alone.
func trusting(caPath string) (*tls.Config, error) {
	b, err := os.ReadFile(caPath)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no certificate", caPath)
	}
	return &tls.Config{RootCAs: pool}, nil
}

// targetCA is the target's certificate, which the bench's own requests to it trust.
var targetCA string

// benchClient is the client the bench asks the target with (its count): one that trusts
// the target's certificate, when there is one. It keeps no connection: it asks a few times
// a round.
func benchClient() *http.Client {
	if targetCA == "" {
		return http.DefaultClient
	}
	tc, err := trusting(targetCA)
	if err != nil {
		panic(err) // written by this process before the target started
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}, Timeout: 30 * time.Second}
}

// spokeHTTP2 checks that vigil's sample run (its stored variables) went over HTTP/2, as
// the tls scenario says it measures.
func spokeHTTP2(samplePath string) error {
	r, err := readSample(samplePath)
	if err != nil {
		return err
	}
	var vars struct {
		Proto string `json:"proto"`
	}
	if err := json.Unmarshal([]byte(r.Vars), &vars); err != nil {
		return fmt.Errorf("the sample run's variables: %w", err)
	}
	if vars.Proto != "HTTP/2.0" {
		return fmt.Errorf("vigil's runs went over %q, not HTTP/2", vars.Proto)
	}
	return nil
}
