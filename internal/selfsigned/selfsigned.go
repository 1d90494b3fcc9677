// Package selfsigned makes the certificate a loopback test server presents: self-signed,
// for 127.0.0.1 and localhost, so a client trusts it by naming its PEM as its only
// authority (vigil's tls.ca_file, cloudprober's ca_cert_file) and nothing skips
// verification.
package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"time"
)

// Loopback returns a new certificate for 127.0.0.1 and localhost named name, valid from an
// hour ago for a day, and its private key, both as PEM: the certificate is its own
// authority.
func Loopback(name string) (certPEM, keyPEM []byte, err error) {
	return Certificate(name, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
}

// Certificate is Loopback for other names and addresses: a test server that presents a
// certificate for names it is not reached by (an ingress controller's default certificate).
func Certificate(name string, dnsNames []string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           ips,
		DNSNames:              dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
