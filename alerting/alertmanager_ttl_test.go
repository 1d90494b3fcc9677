package alerting_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/configs"
)

// alert_ttl, loaded from a config, is how far ahead endsAt is sent: 3h, not the default 1h.
func TestAlertmanagerAlertTTLFromConfig(t *testing.T) {
	t.Parallel()
	posted := make(chan []map[string]any, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var alerts []map[string]any
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &alerts); err != nil {
			t.Errorf("%s %s: %v: %s", r.Method, r.URL.Path, err, body)
		}
		select {
		case posted <- alerts:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	cfg, err := configs.Parse(filepath.Join(t.TempDir(), "vigil.yaml"), fmt.Appendf(nil, `
checks: [{name: home, kind: http, request: {url: "http://127.0.0.1:9/"}}]
notifiers:
  am: {type: alertmanager, url: %q, alert_ttl: 3h}
`, srv.URL), configs.Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := newNotifier(t, cfg.Notifiers["am"], nil).Deliver(t.Context(), deployFailed(), alerting.State{}); err != nil {
		t.Fatal(err)
	}
	alerts := <-posted
	if len(alerts) != 1 {
		t.Fatalf("posted %v", alerts)
	}
	ends, err := time.Parse(time.RFC3339Nano, fmt.Sprint(alerts[0]["endsAt"]))
	if err != nil {
		t.Fatal(err)
	}
	if ahead := ends.Sub(before); ahead < 3*time.Hour || ahead > 3*time.Hour+time.Minute {
		t.Errorf("endsAt %s is %s after the send; want alert_ttl, 3h", ends, ahead)
	}
}
