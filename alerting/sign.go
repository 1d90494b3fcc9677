package alerting

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook headers (README, "Webhooks").
const (
	HeaderEvent          = "X-Vigil-Event"
	HeaderTimestamp      = "X-Vigil-Timestamp"
	HeaderSignature      = "X-Vigil-Signature"
	HeaderIdempotencyKey = "Idempotency-Key"
)

// SignaturePrefix starts every X-Vigil-Signature value.
const SignaturePrefix = "sha256="

// DefaultTolerance is how far a webhook's timestamp may be from the receiver's clock when
// Verify is given no tolerance: it bounds how long a captured request can be replayed.
const DefaultTolerance = 5 * time.Minute

// Verify's errors; test with errors.Is.
var (
	ErrNoSecret         = errors.New("no signing secret configured")
	ErrNoSignature      = errors.New("missing " + HeaderSignature)
	ErrMalformedSig     = errors.New("malformed " + HeaderSignature + `: want "sha256=" and 64 hex digits`)
	ErrSignatureInvalid = errors.New("signature does not match the body and timestamp")
	ErrBadTimestamp     = errors.New("missing or malformed " + HeaderTimestamp + ": want unix seconds")
	ErrStaleTimestamp   = errors.New(HeaderTimestamp + " is outside the tolerance")
)

// Sign returns the X-Vigil-Signature value for a body sent at timestamp (unix seconds, as
// sent in X-Vigil-Timestamp): "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
func Sign(secret []byte, timestamp string, body []byte) string {
	return SignaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// maxSignatures bounds how many comma-separated values a signature header may carry.
const maxSignatures = 8

// Verify checks a webhook as a receiver should: the timestamp is unix seconds within
// tolerance of now (tolerance <= 0 means DefaultTolerance), and signature — one
// "sha256=HEX" value, or several separated by commas while a secret is rotated — matches
// HMAC-SHA256(secret, timestamp + "." + body), compared in constant time. body must be the
// raw bytes received, before any JSON decoding.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	ts, err := parseTimestamp(timestamp)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew > tolerance || skew < -tolerance {
		return fmt.Errorf("%w: %s from now, tolerance %s", ErrStaleTimestamp, skew.Round(time.Second), tolerance)
	}
	sigs, err := parseSignature(signature)
	if err != nil {
		return err
	}
	want := mac(secret, timestamp, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignatureInvalid
}

// VerifyHeader is Verify with the timestamp and signature taken from a request's headers.
func VerifyHeader(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	return Verify(secret, h.Get(HeaderTimestamp), h.Get(HeaderSignature), body, now, tolerance)
}

func parseTimestamp(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, ErrBadTimestamp
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrBadTimestamp
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, ErrBadTimestamp
	}
	return ts, nil
}

// parseSignature reads "sha256=HEX[, sha256=HEX...]". Values with another scheme are
// skipped, so a sender may add a stronger one later without breaking old receivers.
func parseSignature(h string) ([][]byte, error) {
	if strings.TrimSpace(h) == "" {
		return nil, ErrNoSignature
	}
	parts := strings.SplitN(h, ",", maxSignatures+1)
	if len(parts) > maxSignatures {
		return nil, ErrMalformedSig
	}
	var out [][]byte
	for _, p := range parts {
		p = strings.TrimSpace(p)
		scheme, value, ok := strings.Cut(p, "=")
		if !ok {
			return nil, ErrMalformedSig
		}
		if !strings.EqualFold(scheme, "sha256") {
			continue
		}
		if len(value) != 2*sha256.Size {
			return nil, ErrMalformedSig
		}
		b, err := hex.DecodeString(value)
		if err != nil {
			return nil, ErrMalformedSig
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, ErrMalformedSig
	}
	return out, nil
}
