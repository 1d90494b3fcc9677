package configs_test

import (
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// Where 0 means something, a written 0 does it, and is not replaced by the default or by
// the value a check or a service would otherwise take from above: a check's
// repeat_interval: 0 turns its reminders off under defaults.repeat_interval: 4h, a
// service's verify.locations.min: 0 waits for every location under locations.min: 2, and
// locations.wait: 0s does not wait. Keys left out still take their defaults. (The 0s
// vigil refuses are testdata/bad/written-zeros.yaml.)
func TestWrittenZeroThatMeansSomething(t *testing.T) {
	p := write(t, `
defaults: {repeat_interval: 4h, timeout: 30s}
checks:
  - {name: quiet, kind: http, repeat_interval: 0s, request: {url: "http://127.0.0.1:8080/"}}
  - {name: loud, kind: http, request: {url: "http://127.0.0.1:8080/"}}
services:
  web: {checks: [quiet], verify: {locations: {min: 0, wait: 0s}}}
  api: {checks: [loud], verify: {locations: {fail: 2}}}
locations: {min: 2, wait: 30s}
`)
	cfg, err := configs.Load(p, configs.Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.CheckByName("quiet").RepeatInterval; got != 0 {
		t.Errorf("quiet's repeat_interval: %s; want 0 (written), not defaults' 4h", got)
	}
	if got := cfg.CheckByName("loud").RepeatInterval; got != 4*time.Hour {
		t.Errorf("loud's repeat_interval: %s; want defaults' 4h", got)
	}
	if got := cfg.CheckByName("loud").Timeout; got != 30*time.Second {
		t.Errorf("loud's timeout: %s; want defaults' 30s", got)
	}
	if got, want := cfg.ServiceQuorum(cfg.Services["web"]), (configs.Quorum{Min: 0, Fail: 1, Wait: 0}); got != want {
		t.Errorf("web's quorum: %+v; want %+v (min: 0 and wait: 0s as written)", got, want)
	}
	if got, want := cfg.ServiceQuorum(cfg.Services["api"]), (configs.Quorum{Min: 2, Fail: 2, Wait: 30 * time.Second}); got != want {
		t.Errorf("api's quorum: %+v; want %+v (the top-level min and wait)", got, want)
	}
	if a := cfg.Agent; a.Concurrency != 32 || a.MaxConnections != 512 {
		t.Errorf("agent left out: concurrency %d, max_connections %d; want the defaults 32 and 512", a.Concurrency, a.MaxConnections)
	}

	for body, want := range map[string]time.Duration{"locations: {wait: 0s}\n": 0, "locations: {min: 0}\n": configs.DefaultLocationsWait} {
		cfg, err := configs.Load(write(t, body), configs.Options{Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Locations.Wait; got != want {
			t.Errorf("%q: locations.wait %s; want %s", body, got, want)
		}
	}
}

// A written 0 is refused in the defaults block too, once, and the checks that take the
// block's value are not told of it again.
func TestWrittenZeroInDefaultsSaidOnce(t *testing.T) {
	p := write(t, `
defaults: {timeout: 0s}
checks:
  - {name: a, kind: http, request: {url: "http://127.0.0.1:8080/"}}
  - {name: b, kind: sla, request: {url: "http://127.0.0.1:8080/"}}
`)
	_, err := configs.Load(p, configs.Options{Environ: []string{}})
	want := p + ":2: defaults.timeout: 0 is not a setting of this key: it means neither none nor unlimited; leave the key out for the default 10s, or give a positive duration such as 30s; a check always has a timeout"
	if err == nil || err.Error() != want {
		t.Errorf("got:  %v\nwant: %s", err, want)
	}
}
