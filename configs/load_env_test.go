package configs_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/configs"
)

// An environment override holds one text value. One aimed at a list, a mapping or an item
// of a list is an error that names the variable, not the file's line, and whose fix is not
// the file's list syntax.
func TestEnvOverridesOfListsAndMaps(t *testing.T) {
	p := write(t, `
agent: {listen: 127.0.0.1:7000}
defaults: {notify: [ops]}
checks: [{name: a, kind: http, request: {url: "http://127.0.0.1:8080/"}}]
services: {web: {checks: [a]}}
notifiers: {ops: {type: webhook, url: "http://127.0.0.1:9/hook", secret: s3cret}}
`)
	const fix = "an environment variable (VIGIL_SECTION__KEY) sets one text value, not a list, a mapping or an item of one: set this key in the file"
	for env, want := range map[string]string{
		"VIGIL_DEFAULTS__NOTIFY=ops,pager":  `environment VIGIL_DEFAULTS__NOTIFY: defaults.notify: expected a list, got "ops,pager"; ` + fix,
		"VIGIL_SERVICES__WEB__CHECKS=a":     `environment VIGIL_SERVICES__WEB__CHECKS: services.web.checks: expected a list, got "a"; ` + fix,
		"VIGIL_CHECKS__0__NAME=b":           `environment VIGIL_CHECKS__0__NAME: checks: expected a list, got a mapping; ` + fix,
		"VIGIL_AGENT__LISTEN__HOST=0.0.0.0": `environment VIGIL_AGENT__LISTEN__HOST: agent.listen: expected a text value, got a mapping; ` + fix,
		"VIGIL_STORE__POOL=8":               `environment VIGIL_STORE__POOL: store.pool: expected a mapping, got "8"; ` + fix,
	} {
		_, err := configs.Load(p, configs.Options{Environ: []string{env}})
		// The first line; a check list that did not decode also leaves services.web.checks
		// naming a check that is not there.
		if err == nil || strings.Split(err.Error(), "\n")[0] != want {
			t.Errorf("%s:\n got: %v\nwant: %s", env, err, want)
		}
	}
	// A scalar override inside a map works as documented.
	cfg, err := configs.Load(p, configs.Options{Environ: []string{"VIGIL_NOTIFIERS__OPS__URL=http://127.0.0.1:10/hook"}})
	if err != nil || cfg.Notifiers["ops"].URL != "http://127.0.0.1:10/hook" {
		t.Errorf("notifiers.ops.url from the environment: %v", err)
	}
}

// A variable's value is used as it is: a ${...} in it is not expanded again, so a value
// cannot pull in another variable (or loop).
func TestVariableValuesAreNotExpandedAgain(t *testing.T) {
	p := write(t, `
checks:
  - name: a
    kind: http
    request: {url: "http://127.0.0.1:8080/", headers: {X-Env: "${APP_ENV}", X-Loop: "${LOOP}"}}
`)
	cfg, err := configs.Load(p, configs.Options{Environ: []string{"APP_ENV=${SECRET_ENV}", "SECRET_ENV=leaked", "LOOP=${LOOP}"}})
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Checks[0].Spec.(*configs.HTTPSpec).Request.Headers
	if h["X-Env"] != "${SECRET_ENV}" || h["X-Loop"] != "${LOOP}" {
		t.Errorf("headers %v; want the variables' values as they are", h)
	}
}

// A value an environment variable set that validation refuses names the variable, not the
// file's nearest line (the file's agent: line did not hold concurrency). A variable names
// keys in lower case: beside a notifier named "Ops" it makes a notifier "ops" of its own.
func TestValidationErrorsNameTheOverride(t *testing.T) {
	p := write(t, `
agent: {location: eu}
checks: [{name: a, kind: http, every: 10ms, notify: [Ops], request: {url: "http://127.0.0.1:8080/"}}]
notifiers: {Ops: {type: webhook, url: "http://127.0.0.1:9/hook", secret: s3cret}}
`)
	_, err := configs.Load(p, configs.Options{Environ: []string{"VIGIL_AGENT__CONCURRENCY=-1", "VIGIL_DEFAULTS__EVERY=10ms",
		"VIGIL_NOTIFIERS__OPS__URL=http://127.0.0.1:10/hook"}})
	want := []string{
		"environment VIGIL_AGENT__CONCURRENCY: agent.concurrency: must be at least 1, got -1; use 1 or more",
		"environment VIGIL_DEFAULTS__EVERY: defaults.every: 10ms is too frequent; use 1s or more",
		p + ":3: checks[0].every: 10ms is too frequent; use 1s or more",
		"environment VIGIL_NOTIFIERS__OPS__URL: notifiers.ops.type: missing; set type to one of: alertmanager, discord, email, opsgenie, pagerduty, slack, teams, webhook",
	}
	if err == nil {
		t.Fatal("loaded")
	}
	got := strings.Split(err.Error(), "\n")
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, err)
		}
	}
}

// VIGIL_ variables: VIGIL_SECTION__KEY overrides a key. One with a single underscore that
// names a key (VIGIL_AGENT_LISTEN) set nothing, without a word; it is an error that says
// how to write it, unless the key is one `vigil run` does not use. Variables that name no
// key (vigil's own, the scripts') stay quiet, and an override of a key that does not exist
// is an error with a suggestion.
func TestMisnamedEnvironmentVariables(t *testing.T) {
	p := write(t, `
agent: {listen: 127.0.0.1:7000}
checks: [{name: a, kind: http, request: {url: "http://127.0.0.1:8080/"}}]
services: {web: {checks: [a]}}
`)
	for _, c := range []struct {
		env        string
		checksOnly bool
		want       string // the error; "" for none
	}{
		{env: "VIGIL_AGENT_LISTEN=0.0.0.0:9595",
			want: "environment VIGIL_AGENT_LISTEN: agent.listen: this variable sets nothing: an override has two underscores between section and key; set VIGIL_AGENT__LISTEN (two underscores between section and key), or unset VIGIL_AGENT_LISTEN"},
		{env: "VIGIL_AGENT_API_TOKEN=t",
			want: "environment VIGIL_AGENT_API_TOKEN: agent.api_token: this variable sets nothing: an override has two underscores between section and key; set VIGIL_AGENT__API_TOKEN (two underscores between section and key), or unset VIGIL_AGENT_API_TOKEN"},
		{env: "VIGIL_DEFAULTS_TIMEOUT=30s", checksOnly: true,
			want: "environment VIGIL_DEFAULTS_TIMEOUT: defaults.timeout: this variable sets nothing: an override has two underscores between section and key; set VIGIL_DEFAULTS__TIMEOUT (two underscores between section and key), or unset VIGIL_DEFAULTS_TIMEOUT"},
		{env: "VIGIL_SERVICES_WEB_DRY_RUN=true",
			want: "environment VIGIL_SERVICES_WEB_DRY_RUN: services.web.dry_run: this variable sets nothing: an override has two underscores between section and key; set VIGIL_SERVICES__WEB__DRY_RUN (two underscores between section and key), or unset VIGIL_SERVICES_WEB_DRY_RUN"},
		{env: "VIGIL_AGENT__LISTN=127.0.0.1:1",
			want: `environment VIGIL_AGENT__LISTN: agent.listn: unknown key "listn"; did you mean "listen"?`},
		{env: "VIGIL_AGENT__CONCURRENCY=0",
			want: "environment VIGIL_AGENT__CONCURRENCY: agent.concurrency: 0 is not a setting of this key: it means neither none nor unlimited; leave the key out for the default 32, or use 1 or more"},
		{env: "VIGIL_AGENT_LISTEN=0.0.0.0:9595", checksOnly: true}, // vigil run uses no agent.* key
		{env: "VIGIL_AGENT__LISTEN=127.0.0.1:7001"},
		{env: "VIGIL_CONFIG=/etc/vigil.yaml"},
		{env: "VIGIL_BROWSER=/usr/bin/chromium"},
		{env: "VIGIL_API_TOKEN=t"},
		{env: "VIGIL_AGENT=http://127.0.0.1:9595"}, // a section, not a key
		{env: "VIGIL_STORE_SECONDS=5"},
		{env: "VIGIL_BROWSER_TEST_MARKER=1"},
		{env: "VIGIL_REQUIRE_BROWSER=1"},
		{env: "VIGIL_PUBLIC_URL=http://127.0.0.1:9595"},
	} {
		_, err := configs.Load(p, configs.Options{Environ: []string{c.env}, ChecksOnly: c.checksOnly})
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%s (checks only %v):\n got: %s\nwant: %s", c.env, c.checksOnly, got, c.want)
		}
	}
}

// A ${VAR} that expands to nothing (unset, or set to "") is the text "", not a written
// null (zero.go): a header keeps its empty value, and a duration says "" is not one, as
// before nulls were refused. VIGIL_SECTION__KEY= is the same "".
func TestEmptyExpansionIsNotANull(t *testing.T) {
	p := write(t, `
checks:
  - name: a
    kind: http
    request: {url: "http://127.0.0.1:8080/", headers: {X-Env: "${APP_ENV}", X-Empty: "${EMPTY}"}}
`)
	cfg, err := configs.Load(p, configs.Options{Environ: []string{"EMPTY="}})
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Checks[0].Spec.(*configs.HTTPSpec).Request.Headers
	if v, ok := h["X-Env"]; !ok || v != "" || h["X-Empty"] != "" {
		t.Errorf("headers %q; want X-Env and X-Empty empty", h)
	}
	p = write(t, `
checks: [{name: a, kind: http, timeout: "${CHECK_TIMEOUT}", request: {url: "http://127.0.0.1:8080/"}}]
`)
	for _, env := range [][]string{{}, {"CHECK_TIMEOUT="}} {
		_, err = configs.Load(p, configs.Options{Environ: env})
		if want := p + `:2: checks[0].timeout: "" is not a duration; write it like 500ms, 30s, 5m, 1h30m or 7d`; err == nil || err.Error() != want {
			t.Errorf("%v:\n got: %v\nwant: %s", env, err, want)
		}
	}
	_, err = configs.Load(p, configs.Options{Environ: []string{"CHECK_TIMEOUT=5s", "VIGIL_DEFAULTS__TIMEOUT="}})
	if want := `environment VIGIL_DEFAULTS__TIMEOUT: defaults.timeout: "" is not a duration; write it like 500ms, 30s, 5m, 1h30m or 7d`; err == nil || err.Error() != want {
		t.Errorf("VIGIL_DEFAULTS__TIMEOUT=:\n got: %v\nwant: %s", err, want)
	}
}
