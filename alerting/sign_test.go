package alerting_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
)

// The test vector of docs/WEBHOOKS.md: receivers check their implementation against it.
const (
	vectorSecret    = "vigil-example-secret"
	vectorTimestamp = "1767225600"
	vectorBody      = `{"event":"deploy_failed","deploy":{"id":"d-42","service":"web","version":"v2","environment":"prod"},"failed_checks":[{"name":"home","summary":"TypeError: e.init is not a function at app.min.js:1:2045","run_url":"https://vigil.example/runs/981"}],"location":"local","sent_at":"2026-01-01T00:00:00Z"}`
	vectorSignature = "sha256=4b7557941b9aaa6c674619a991fb7429f03993c6a0cb0a870dd1cf50da1ac0b7"
)

func TestSignTestVector(t *testing.T) {
	t.Parallel()
	got := alerting.Sign([]byte(vectorSecret), vectorTimestamp, []byte(vectorBody))
	if got != vectorSignature {
		t.Fatalf("Sign = %s, want the README's %s", got, vectorSignature)
	}
	at := time.Unix(1767225600, 0).Add(30 * time.Second)
	if err := alerting.Verify([]byte(vectorSecret), vectorTimestamp, vectorSignature, []byte(vectorBody), at, 0); err != nil {
		t.Fatalf("Verify(test vector) = %v", err)
	}
}

// docs/WEBHOOKS.md's "Verifying a webhook signature" shows the vector; it must be this one, so
// what receivers test against cannot drift from what vigil signs.
func TestReadmeShowsTheTestVector(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../docs/WEBHOOKS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Verifying a webhook signature")
	if !ok {
		t.Fatal(`docs/WEBHOOKS.md has no "## Verifying a webhook signature"`)
	}
	got := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		for _, name := range []string{"secret", "timestamp", "body", "signature"} {
			if v, ok := strings.CutPrefix(line, name+":"); ok && got[name] == "" {
				got[name] = strings.TrimSpace(v)
			}
		}
	}
	want := map[string]string{"secret": vectorSecret, "timestamp": vectorTimestamp, "body": vectorBody, "signature": vectorSignature}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("README's %s is %q, want %q", name, got[name], w)
		}
	}
	if sig := alerting.Sign([]byte(got["secret"]), got["timestamp"], []byte(got["body"])); sig != got["signature"] {
		t.Errorf("the README's vector signs to %s, not to its %s", sig, got["signature"])
	}
	if !strings.Contains(section, "openssl dgst -sha256 -hmac "+vectorSecret) || !strings.Contains(section, "printf '%s.' "+vectorTimestamp) {
		t.Error("the README's openssl line does not use the vector")
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cret")
	body := []byte(`{"event":"deploy_failed"}`)
	now := time.Unix(1767225600, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	good := alerting.Sign(secret, ts, body)
	other := alerting.Sign([]byte("other"), ts, body)
	tests := []struct {
		name      string
		secret    []byte
		ts, sig   string
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{name: "good", sig: good},
		{name: "upper-case hex", sig: "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256="))},
		{name: "rotation: one of several", sig: other + ", " + good},
		{name: "unknown scheme skipped", sig: "sha512=abcd," + good},
		{name: "wrong secret", sig: other, want: alerting.ErrSignatureInvalid},
		{name: "body changed", sig: good, body: []byte(`{"event":"deploy_passed"}`), want: alerting.ErrSignatureInvalid},
		{name: "timestamp changed", sig: good, ts: strconv.FormatInt(now.Unix()+1, 10), want: alerting.ErrSignatureInvalid},
		{name: "missing signature", sig: "", want: alerting.ErrNoSignature},
		{name: "no prefix", sig: strings.TrimPrefix(good, "sha256="), want: alerting.ErrMalformedSig},
		{name: "short hex", sig: good[:len(good)-2], want: alerting.ErrMalformedSig},
		{name: "not hex", sig: "sha256=" + strings.Repeat("zz", 32), want: alerting.ErrMalformedSig},
		{name: "only other schemes", sig: "sha1=abcd", want: alerting.ErrMalformedSig},
		{name: "too many values", sig: strings.Repeat(good+",", 9) + good, want: alerting.ErrMalformedSig},
		{name: "missing timestamp", ts: "-", sig: good, want: alerting.ErrBadTimestamp},
		{name: "signed timestamp", ts: "+" + ts, sig: good, want: alerting.ErrBadTimestamp},
		{name: "fractional timestamp", ts: ts + ".5", sig: good, want: alerting.ErrBadTimestamp},
		{name: "stale", sig: good, now: now.Add(6 * time.Minute), want: alerting.ErrStaleTimestamp},
		{name: "future", sig: good, now: now.Add(-6 * time.Minute), want: alerting.ErrStaleTimestamp},
		{name: "inside a wider tolerance", sig: good, now: now.Add(6 * time.Minute), tolerance: 10 * time.Minute},
		{name: "no secret", secret: []byte{}, sig: good, want: alerting.ErrNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec, stamp, b, at := secret, ts, body, now
			if tt.secret != nil {
				sec = tt.secret
			}
			switch tt.ts {
			case "":
			case "-":
				stamp = ""
			default:
				stamp = tt.ts
			}
			if tt.body != nil {
				b = tt.body
			}
			if !tt.now.IsZero() {
				at = tt.now
			}
			err := alerting.Verify(sec, stamp, tt.sig, b, at, tt.tolerance)
			if tt.want == nil && err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzVerify: whatever arrives in the headers, Verify neither panics nor accepts a
// signature that is not the body's HMAC at that timestamp.
func FuzzVerify(f *testing.F) {
	f.Add("1767225600", vectorSignature, []byte(vectorBody))
	f.Add("1767225600", "sha256=", []byte(""))
	f.Add("", "sha256=zz", []byte("{}"))
	f.Add("99999999999999999999", vectorSignature+","+vectorSignature, []byte(vectorBody))
	f.Add("1767225600", "SHA256="+strings.Repeat("0", 64), []byte("x"))
	f.Add("1767225600", " , ,=,sha256==", []byte(nil))
	secret := []byte(vectorSecret)
	now := time.Unix(1767225600, 0)
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		err := alerting.Verify(secret, ts, sig, body, now, time.Hour)
		if err == nil {
			want := alerting.Sign(secret, ts, body)
			if !strings.Contains(strings.ToLower(sig), strings.TrimPrefix(want, "sha256=")) {
				t.Fatalf("Verify accepted %q for timestamp %q, body %q; the signature is %s", sig, ts, body, want)
			}
		}
		// What Sign makes, Verify takes, for any body at a valid timestamp.
		if err := alerting.Verify(secret, "1767225600", alerting.Sign(secret, "1767225600", body), body, now, time.Hour); err != nil {
			t.Fatalf("Verify(Sign(body)) = %v", err)
		}
	})
}
