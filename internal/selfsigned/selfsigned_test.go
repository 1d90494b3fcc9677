package selfsigned

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"
)

// The certificate verifies, as its own authority, for 127.0.0.1 and localhost, now and not
// after a day; for another name it does not.
func TestLoopback(t *testing.T) {
	certPEM, keyPEM, err := Loopback("selfsigned test")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(certPEM) {
		t.Fatal("the certificate PEM does not parse")
	}
	for name, ok := range map[string]bool{"127.0.0.1": true, "localhost": true, "example.com": false, "10.0.0.1": false} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); (err == nil) != ok {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1", CurrentTime: time.Now().Add(25 * time.Hour)}); err == nil {
		t.Error("still valid after a day")
	}
}
