package configs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/configs"
)

// A check's fingerprint is what it measures: every kind's spec encodes (a kind whose spec
// encoding/json refused would fingerprint "" and never be told changed), the same file
// gives the same fingerprint, the request changes it, and the common keys (schedule,
// assertions, retries, notify) do not.
func TestFingerprintIsWhatACheckMeasures(t *testing.T) {
	files, _ := filepath.Glob("examples/*.yaml")
	kinds := map[string]bool{}
	for _, f := range files {
		a, errA := configs.LoadPartial(f, configs.Options{Environ: []string{}})
		b, errB := configs.LoadPartial(f, configs.Options{Environ: []string{}})
		if a == nil || b == nil {
			t.Fatalf("%s: %v %v", f, errA, errB)
		}
		for i, c := range a.Checks {
			if c == nil || c.Spec == nil {
				continue
			}
			kinds[c.Kind] = true
			if fp := c.Fingerprint(); fp == "" || fp != b.Checks[i].Fingerprint() {
				t.Errorf("%s: check %s: fingerprints %q and %q of the same file", f, c.Name, fp, b.Checks[i].Fingerprint())
			}
		}
	}
	for _, k := range configs.Kinds() {
		if !kinds[k] {
			t.Errorf("no example has a %s check: its fingerprint is not tested", k)
		}
	}

	base := `checks:
  - name: home
    kind: http
    every: %EVERY%
    retries: 1
    request: {url: "http://127.0.0.1:9/%PATH%", headers: {A: "1", B: "2"}}
    assert: [%ASSERT%]
`
	fp := func(every, path, assert string) string {
		t.Helper()
		y := strings.NewReplacer("%EVERY%", every, "%PATH%", path, "%ASSERT%", assert).Replace(base)
		p := filepath.Join(t.TempDir(), "vigil.yaml")
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := configs.Load(p, configs.Options{Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Checks[0].Fingerprint()
	}
	was := fp("1m", "healthz", `"status == 200"`)
	if got := fp("5m", "healthz", `"status == 200", "duration_ms < baseline.duration_ms * 2"`); got != was {
		t.Errorf("a new schedule and assertion changed the fingerprint: %s, was %s", got, was)
	}
	if got := fp("1m", "api/search", `"status == 200"`); got == was {
		t.Errorf("a new URL kept the fingerprint %s", got)
	}
}
