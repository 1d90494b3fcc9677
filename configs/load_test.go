package configs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
)

// load loads and builds a config the way `vigil validate` does, so compile errors of
// assertions and templates are part of the corpus.
func load(t testing.TB, path string, opts configs.Options) (*configs.Config, error) {
	t.Helper()
	cfg, err := configs.Load(path, opts)
	if err != nil {
		return nil, err
	}
	if _, err := checks.Build(cfg, checks.Deps{}); err != nil {
		return nil, err
	}
	return cfg, nil
}

// TestBadConfigs checks the exact message a user sees for each file of the corpus. The
// expected lines are the file's leading "# want: " comments.
func TestBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) < 15 {
		t.Fatalf("corpus went missing: %d files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			_, err = load(t, f, configs.Options{Environ: []string{}})
			if err == nil {
				t.Fatalf("loaded without error; want:\n%s", strings.Join(want, "\n"))
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Errorf("message:\n got: %s\nwant: %s", got, strings.Join(want, "\n"))
			}
		})
	}
}

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAndExpansion(t *testing.T) {
	p := write(t, `
agent: {api_token: "${TOKEN}"}
store: {dsn: data/v.db}
defaults: {every: 30s, timeout: 4s, retries: 3, failure_window: 10, notify: [ops]}
checks:
  - name: a
    kind: http
    request: {url: "http://${HOST:-127.0.0.1}:8080/", headers: {X-Key: "$${literal}"}}
  - name: b
    kind: http
    every: 5s
    retries: 0
    failure_window: 0
    notify: []
    request: {url: "http://127.0.0.1:8080/", timeout: 1m}
services:
  web: {checks: [a, b]}
notifiers:
  ops: {type: webhook, url: "http://127.0.0.1:9/hook", secret: "${HOOK_SECRET}"}
`)
	cfg, err := load(t, p, configs.Options{Environ: []string{"TOKEN=t0k", "HOOK_SECRET=shh"}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Checks[0], cfg.Checks[1]
	if a.Every != 30*time.Second || a.Timeout != 4*time.Second || *a.Retries != 3 || *a.FailureWindow != 10 || len(a.Notify) != 1 {
		t.Errorf("defaults not applied to a: every=%s timeout=%s retries=%d failure_window=%d notify=%v", a.Every, a.Timeout, *a.Retries, *a.FailureWindow, a.Notify)
	}
	if b.Every != 5*time.Second || *b.Retries != 0 || *b.FailureWindow != 0 || len(b.Notify) != 0 {
		t.Errorf("b's own values lost: every=%s retries=%d failure_window=%d notify=%v", b.Every, *b.Retries, *b.FailureWindow, b.Notify)
	}
	if b.Spec.(*configs.HTTPSpec).Request.Timeout != 4*time.Second {
		t.Errorf("a request timeout longer than the check's must be capped: %s", b.Spec.(*configs.HTTPSpec).Request.Timeout)
	}
	if a.Spec.(*configs.HTTPSpec).Request.URL != "http://127.0.0.1:8080/" || a.Spec.(*configs.HTTPSpec).Request.Headers["X-Key"] != "${literal}" {
		t.Errorf("expansion: url=%q header=%q", a.Spec.(*configs.HTTPSpec).Request.URL, a.Spec.(*configs.HTTPSpec).Request.Headers["X-Key"])
	}
	if cfg.Agent.APIToken.Value() != "t0k" || cfg.Notifiers["ops"].Secret.Value() != "shh" {
		t.Error("secrets not expanded")
	}
	if want := filepath.Join(filepath.Dir(p), "data", "v.db"); cfg.Store.DSN != want {
		t.Errorf("dsn %q, want %q (relative to the config file)", cfg.Store.DSN, want)
	}
	if got := cfg.Services["web"].Verify; got.Count != 6 || got.Interval != 5*time.Second || *got.ConsecutiveErrorLimit != 4 {
		t.Errorf("verify defaults: %+v", got)
	}
	if len(a.Services) != 1 || a.Services[0] != "web" {
		t.Errorf("check a should know its service: %v", a.Services)
	}
}

// TestNotifierTimeouts pins each type's default timeout for one attempt (docs/CONFIG.md):
// Slack's covers the screenshots' uploads, email's the whole SMTP conversation.
func TestNotifierTimeouts(t *testing.T) {
	p := write(t, `
checks: [{name: a, kind: http, request: {url: "http://127.0.0.1:8080/"}}]
notifiers:
  chat: {type: slack, token: xoxb-1, channel: "#deploys"}
  chat-quick: {type: slack, token: xoxb-1, channel: "#deploys", timeout: 5s}
  mail: {type: email, host: 127.0.0.1, from: vigil@example.com, to: [ops@example.com]}
  hook: {type: webhook, url: "http://127.0.0.1:9/hook", secret: s3cret}
  pager: {type: pagerduty, routing_key: r0ut1ng}
`)
	cfg, err := load(t, p, configs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]time.Duration{"chat": 30 * time.Second, "chat-quick": 5 * time.Second,
		"mail": 30 * time.Second, "hook": 10 * time.Second, "pager": 10 * time.Second} {
		if got := cfg.Notifiers[name].Timeout; got != want {
			t.Errorf("notifiers.%s.timeout: %s, want %s", name, got, want)
		}
	}
}

func TestEnvAndFlagOverrides(t *testing.T) {
	p := write(t, "agent: {listen: 127.0.0.1:7000, location: file}\n")
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.String("listen", "", "")
	if err := fs.Parse([]string{"--listen", "127.0.0.1:7002"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(p, configs.Options{
		Environ:  []string{"VIGIL_AGENT__LOCATION=eu-1", "VIGIL_AGENT__LISTEN=127.0.0.1:7001", "VIGIL_CONFIG=x", "VIGIL_BROWSER=/b"},
		Flags:    fs,
		FlagKeys: map[string]string{"listen": "agent.listen"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agent.Location != "eu-1" || cfg.Agent.Listen != "127.0.0.1:7002" {
		t.Errorf("got location %q listen %q", cfg.Agent.Location, cfg.Agent.Listen)
	}

	_, err = configs.Load(p, configs.Options{Environ: []string{"VIGIL_AGENT__LISTN=x"}})
	if err == nil || err.Error() != `environment VIGIL_AGENT__LISTN: agent.listn: unknown key "listn"; did you mean "listen"?` {
		t.Errorf("unknown env key: %v", err)
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	p := write(t, `notifiers: {ops: {type: slack, token: xoxb-very-secret, channel: "#d"}}`)
	cfg, err := configs.Load(p, configs.Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Notifiers["ops"]
	for _, s := range []string{n.Token.String(), n.Token.GoString(), n.Token.LogValue().String()} {
		if strings.Contains(s, "very-secret") {
			t.Errorf("secret printed: %s", s)
		}
	}
	b, _ := n.Token.MarshalJSON()
	if strings.Contains(string(b), "very-secret") {
		t.Errorf("secret in JSON: %s", b)
	}
	if n.Token.Value() != "xoxb-very-secret" {
		t.Error("Value must return the secret")
	}
}

func TestMissingFile(t *testing.T) {
	_, err := configs.Load(filepath.Join(t.TempDir(), "nope.yaml"), configs.Options{})
	if err == nil || !strings.Contains(err.Error(), "cannot read config: no such file or directory; create it") {
		t.Errorf("got %v", err)
	}
}

func TestNearest(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"methd", "method"}, {"stauts", "status"}, {"timout", "timeout"}, {"zzzzzz", ""}, {"url", "url"},
		// A name without its unit suffix, however short, when only one candidate has it.
		{"p95", "p95_ms"}, {"duration", "duration_ms"}, {"p9", ""}, {"max", ""},
	} {
		candidates := []string{"method", "status", "timeout", "url", "headers", "p95_ms", "p99_ms", "duration_ms", "max_ms", "max_bytes"}
		if got := configs.Nearest(c.in, candidates); got != c.want {
			t.Errorf("Nearest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzLoad feeds arbitrary bytes to the loader: it may reject them, never panic, and every
// error it returns is a located configs.Errors.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.yaml")
	seeds = append(seeds, "examples/http-and-script.yaml")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("checks: [{name: a, kind: http, request: {url: 'http://127.0.0.1/'}, assert: ['status == 200']}]"))
	f.Add([]byte("services: {web: {checks: [a], on_failure: {deploy_failed: [x]}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := configs.Parse("fuzz.yaml", data, configs.Options{Environ: []string{"API_TOKEN=x"}})
		if err != nil {
			if _, ok := err.(configs.Errors); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		_, _ = checks.Build(cfg, checks.Deps{})
	})
}

// YAML reads an unquoted RFC 3339 time as a timestamp; a maintenance window's start and
// end must still load, offset intact, and a weekly window's days in any case. A timezone
// written "" is UTC, as one left out (docs/CONFIG.md), in a weekly window and a one-off.
func TestMaintenanceWindowsLoad(t *testing.T) {
	p := write(t, `
maintenance:
  - {name: upgrade, start: 2026-12-02T22:00:00+01:00, end: "2026-12-02T23:30:00Z", timezone: ""}
  - {name: nightly, days: [Mon, TUE], at: "23:30", duration: 2h, timezone: Europe/Prague}
  - {name: backups, at: "02:00", duration: 1h, timezone: ""}
`)
	cfg, err := configs.Load(p, configs.Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Maintenance[0]; m.Start != "2026-12-02T22:00:00+01:00" || m.End != "2026-12-02T23:30:00Z" {
		t.Errorf("one-off window start %q end %q", m.Start, m.End)
	}
	if m := cfg.Maintenance[1]; m.Duration != 2*time.Hour || m.Timezone != "Europe/Prague" || len(m.Days) != 2 {
		t.Errorf("weekly window %+v", m)
	}
	if s, err := cfg.Maintenance[2].Schedule(); err != nil || s.Location != time.UTC {
		t.Errorf("weekly window with timezone \"\": %+v, %v; want UTC", s, err)
	}
}

// A hostile config ends at once with an error that names the file and the fix: a few lines
// of nested aliases (a "billion laughs", 9^9 values) took a gigabyte and never finished,
// as the key index followed every alias before the YAML decoder's own guard ran; a file
// with no end (-c /dev/zero) was read for ever. An agent's reload reads the same way.
func TestHostileConfigFiles(t *testing.T) {
	laughs := []string{`a: &a ["x","x","x","x","x","x","x","x","x"]`}
	prev := "a"
	for _, n := range "bcdefghi" {
		refs := strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ",")
		laughs = append(laughs, fmt.Sprintf("%c: &%c [%s]", n, n, refs))
		prev = string(n)
	}
	p := write(t, strings.Join(laughs, "\n")+"\nchecks: []\n")
	_, err := configs.Load(p, configs.Options{})
	if err == nil || !strings.Contains(err.Error(), "excessive aliasing") || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "anchors and aliases") {
		t.Errorf("nested aliases: %v", err)
	}

	_, err = configs.Load("/dev/zero", configs.Options{})
	if err == nil || !strings.Contains(err.Error(), "/dev/zero") || !strings.Contains(err.Error(), "over 64 MiB") {
		t.Errorf("/dev/zero: %v", err)
	}
}
