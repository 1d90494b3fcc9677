package alerting_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/amtest"
	"github.com/vigil-monitor/vigil/internal/golden"
)

func alertmanagerConfig(url string) *configs.Notifier {
	return &configs.Notifier{Type: configs.NotifierAlertmanager, Name: "am", URL: url, Labels: map[string]string{"team": "web"}}
}

// A failed deploy fires one alert in a real Alertmanager with vigil's labels and the
// evidence; the passing deploy that resolves the incident resolves that alert.
func TestAlertmanagerFiresAndResolves(t *testing.T) {
	t.Parallel()
	am := amtest.Start(t)
	n := newNotifier(t, alertmanagerConfig(am.URL), nil)
	st := alerting.State{}
	if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
		t.Fatal(err)
	}
	alerts := waitAlerts(t, am, 1, `vigil_incident="d-42"`)
	a := alerts[0]
	want := map[string]string{"alertname": "VigilDeployFailed", "service": "web", "environment": "prod", "severity": "critical",
		"vigil_incident": "d-42", "team": "web"}
	for k, v := range want {
		if a.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, a.Labels[k], v, a.Labels)
		}
	}
	if a.Annotations["run_url"] != "http://vigil.example/runs/981" || !strings.Contains(a.Annotations["description"], "status == 200 was false") ||
		a.Annotations["version"] != "v2.1.0" || a.GeneratorURL != "http://vigil.example/deploys/d-42" {
		t.Errorf("annotations %v, generatorURL %q", a.Annotations, a.GeneratorURL)
	}
	if !a.EndsAt.After(a.StartsAt.Add(30 * time.Minute)) {
		t.Errorf("endsAt %v should be about alert_ttl (1h) ahead", a.EndsAt)
	}
	if err := n.Deliver(t.Context(), resolvedBy(), st); err != nil {
		t.Fatal(err)
	}
	waitAlerts(t, am, 0, `vigil_incident="d-42"`)
}

// A reminder refreshes the same alert; the recovery resolves it; an existing silence
// applies to what vigil sends.
func TestAlertmanagerCheckIncidentAndSilence(t *testing.T) {
	t.Parallel()
	am := amtest.Start(t)
	if err := am.Silence(t.Context(), "check", "home"); err != nil {
		t.Fatal(err)
	}
	n := newNotifier(t, alertmanagerConfig(am.URL), nil)
	st := alerting.State{}
	reminder := checkEvent(configs.EventCheckFailed, "3")
	reminder.Key, reminder.Reminder, reminder.OccurredAt = reminder.Key+":reminder:1", 1, reminder.OccurredAt.Add(time.Hour)
	for _, ev := range []*alerting.Event{checkEvent(configs.EventCheckFailed, "3"), reminder} {
		if err := n.Deliver(t.Context(), ev, st); err != nil {
			t.Fatal(err)
		}
	}
	a := waitAlerts(t, am, 1, `check="home"`)[0]
	if a.Labels["alertname"] != "VigilCheckFailed" || !a.StartsAt.Equal(time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC)) {
		t.Errorf("alert %+v: want the first failure's startsAt", a)
	}
	if a.Status.State != "suppressed" {
		t.Errorf("state %q; the silence should apply", a.Status.State)
	}
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckRecovered, "3"), st); err != nil {
		t.Fatal(err)
	}
	waitAlerts(t, am, 0, `check="home"`)
}

func waitAlerts(t *testing.T, am *amtest.Server, want int, filters ...string) []amtest.Alert {
	t.Helper()
	var got []amtest.Alert
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got, err = am.Alerts(t.Context(), filters...)
		if err == nil && len(got) == want && (want == 0 || got[0].Status.State != "unprocessed") {
			return got
		}
	}
	t.Fatalf("Alertmanager holds %d alerts (%v), want %d; logs: %s", len(got), err, want, am.Logs())
	return nil
}

func TestAlertmanagerHostileReceiver(t *testing.T) {
	t.Parallel()
	rx := loopback.NewTeams(t) // faults are answered before the receiver reads the request
	testHostileReceiver(t, receiver{fail: rx.Fail,
		build: func(t *testing.T, timeout time.Duration) alerting.Notifier {
			cfg := alertmanagerConfig("http://" + rx.Addr())
			cfg.Timeout = timeout
			return newNotifier(t, cfg, nil)
		}})
}

func TestAlertmanagerSeverityDryRunAndConfig(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	n := newNotifier(t, alertmanagerConfig(rec.srv.URL), nil)
	ev := deployFailed()
	ev.Name = configs.EventDeployInconclusive
	if err := n.Deliver(t.Context(), ev, alerting.State{}); err != nil {
		t.Fatal(err)
	}
	if b := rec.bodies()[0]; !strings.Contains(string(b), `"severity":"warning"`) {
		t.Errorf("inconclusive should be at most a warning: %s", b)
	}
	cfg := alertmanagerConfig(rec.srv.URL)
	cfg.DryRun = true
	err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if !errors.Is(err, alerting.ErrDryRun) || !strings.Contains(err.Error(), "/api/v2/alerts") || len(rec.bodies()) != 1 {
		t.Errorf("dry run: %v", err)
	}
	_, err = alerting.New(&configs.Notifier{Type: configs.NotifierAlertmanager, Name: "am"}, alerting.Options{})
	if err == nil || !strings.Contains(err.Error(), "notifiers.am.url") {
		t.Errorf("New without url: %v", err)
	}
}

// recorder is a loopback HTTP server that answers 200 and keeps the bodies.
type recorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	got [][]byte
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, b)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) bodies() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.got...)
}

// The alerts of every incident story, pinned by golden files (endsAt from a fixed clock).
func TestAlertmanagerAlertsGolden(t *testing.T) {
	t.Parallel()
	for name, evs := range incidents() {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder(t)
			n, err := alerting.New(alertmanagerConfig(rec.srv.URL), alerting.Options{Now: func() time.Time { return time.Date(2026, 1, 1, 13, 30, 0, 0, time.UTC) }})
			if err != nil {
				t.Fatal(err)
			}
			deliverStory(t, n, evs)
			var out bytes.Buffer
			for _, b := range rec.bodies() {
				writeCall(t, &out, "/api/v2/alerts", nil, b)
			}
			golden.Assert(t, "alertmanager/"+name+".txt", out.Bytes())
		})
	}
}

// An Alertmanager behind a proxy that wants a token and a tenant (Mimir's, Grafana
// Cloud's): the configured headers reach it with every post, and the alert fires in the
// real Alertmanager behind; without them the proxy's 401 is a dead letter that says what
// to check. A header vigil sets itself cannot be configured.
func TestAlertmanagerHeaders(t *testing.T) {
	t.Parallel()
	am := amtest.Start(t)
	target, err := url.Parse(am.URL)
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0k3n" || r.Header.Get("X-Scope-OrgID") != "team-web" {
			http.Error(w, "no tenant or token", http.StatusUnauthorized)
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	cfg := alertmanagerConfig(proxy.URL)
	cfg.Headers = map[string]string{"authorization": "Bearer t0k3n", "X-Scope-OrgID": "team-web"}
	if err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil {
		t.Fatal(err)
	}
	waitAlerts(t, am, 1, `vigil_incident="d-42"`)

	err = newNotifier(t, alertmanagerConfig(proxy.URL), nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	var de *alerting.Error
	if !errors.As(err, &de) || de.StatusCode != http.StatusUnauthorized || !de.Permanent || !strings.Contains(err.Error(), "proxy in front of Alertmanager") {
		t.Errorf("without the headers: %v", err)
	}

	// A redirect is not followed: the headers never reach another host.
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	redirect := httptest.NewServer(http.RedirectHandler(other.URL+"/api/v2/alerts", http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	cfg = alertmanagerConfig(redirect.URL)
	cfg.Headers = map[string]string{"Authorization": "Bearer t0k3n"}
	err = newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
	if !errors.As(err, &de) || de.StatusCode != http.StatusTemporaryRedirect || elsewhere.Load() != 0 {
		t.Errorf("a redirect: %v; %d requests reached the other host", err, elsewhere.Load())
	}

	for _, h := range []string{"Content-Type", "user-agent", "Host"} {
		cfg := alertmanagerConfig(proxy.URL)
		cfg.Headers = map[string]string{h: "x"}
		if _, err := alerting.New(cfg, alerting.Options{}); err == nil || !strings.Contains(err.Error(), "notifiers.am.headers."+h) {
			t.Errorf("header %s: %v", h, err)
		}
	}
}

// An Alertmanager that is down (restarting, not yet scheduled) refuses the connection: a
// retryable error, nothing recorded as fired. Once it is up at the same address, the
// retry fires the alert, and the recovery resolves it.
func TestAlertmanagerDownThenUp(t *testing.T) {
	t.Parallel()
	am := amtest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // down: nothing listens there
	n := newNotifier(t, alertmanagerConfig("http://"+addr), nil)
	st := alerting.State{}
	err = n.Deliver(t.Context(), checkEvent(configs.EventCheckFailed, "3"), st)
	if err == nil || alerting.Permanent(err) {
		t.Fatalf("Deliver to a down Alertmanager = %v; want a retryable error", err)
	}
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckRecovered, "3"), st); !errors.Is(err, alerting.ErrSkipped) {
		t.Fatalf("a recovery of an alert that never fired: %v; want it skipped", err)
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the address was taken meanwhile: %v", err)
	}
	target, _ := url.Parse(am.URL)
	up := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Close() })
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckFailed, "3"), st); err != nil {
		t.Fatalf("the retry once Alertmanager is up: %v", err)
	}
	waitAlerts(t, am, 1, `check="home"`)
	if err := n.Deliver(t.Context(), checkEvent(configs.EventCheckRecovered, "3"), st); err != nil {
		t.Fatal(err)
	}
	waitAlerts(t, am, 0, `check="home"`)
}
