package alerting_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
)

// The outbox stores events as JSON and replays them after a restart: the names are a
// contract, and a round trip loses nothing.
func TestEventJSONIsStable(t *testing.T) {
	t.Parallel()
	ev := deployFailed()
	ev.Halt, ev.DryRun = "version B crashes version A peers", true
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{`"name":`, `"key":`, `"incident":`, `"occurred_at":`, `"deploy":{"id":"d-42","service":"web","version":"v2.1.0","environment":"prod","commit":"abc1234",`,
		`"service":`, `"summary":`, `"failed_checks":[{"name":"home","kind":"browser","outcome":"fail","summary":`, `"run_url":`, `"trace_id":`, `"screenshot":`,
		`"location":`, `"status_url":`, `"halt":`, `"actions":[{"notifier":"rollback-web","action":"rollback"}]`, `"dry_run":true`} {
		if !strings.Contains(string(b), name) {
			t.Errorf("event JSON lacks %s: %.300s", name, b)
		}
	}
	var back alerting.Event
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(&back, ev) {
		t.Errorf("round trip changed the event (%v)", err)
	}
}
