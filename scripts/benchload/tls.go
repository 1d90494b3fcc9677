package main

// The tls scenario: the busy one against an HTTPS target, as most production targets are.
// Go's client speaks HTTP/2 to it, as vigil's transport, cloudprober's and the floor's all
// attempt it: each of them trusts the target's self-signed certificate through its own
// setting (vigil's request.tls.ca_file, cloudprober's tls_config.ca_cert_file, the floor's
// -ca), so nothing skips verification.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// newTargetCert writes a self-signed certificate for 127.0.0.1, valid for a day, into dir:
// cert.pem (the target's certificate, and the authority every peer trusts) and key.pem.
func newTargetCert(dir string) (certPath, keyPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "benchload target"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
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
	b, err := os.ReadFile(samplePath)
	if err != nil {
		return err
	}
	var r row
	if err := json.Unmarshal(b, &r); err != nil {
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
