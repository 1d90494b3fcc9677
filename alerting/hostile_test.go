package alerting_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
)

// receiver is a loopback receiver a hostile test makes misbehave.
type receiver struct {
	fail func(loopback.Fault)
	// build makes the notifier with the per-attempt timeout.
	build func(t *testing.T, timeout time.Duration) alerting.Notifier
	// secrets must never show in an error.
	secrets []string
	// plain: the receiver is a chat service whose 400 refuses the message's content, and
	// the notifier sends its plain form then; the 400 is answered to both.
	plain bool
}

// testHostileReceiver checks how a channel notifier reads a receiver that never answers,
// fails, refuses or rate-limits: a timeout and 5xx are retryable, 4xx permanent with the
// status and the answer quoted, a 429's Retry-After honoured, and no secret in any error.
func testHostileReceiver(t *testing.T, rx receiver) {
	t.Helper()
	tests := []struct {
		name       string
		fault      loopback.Fault
		permanent  bool
		retryAfter time.Duration // 0: none
		says       string
	}{
		{"never answers", loopback.Fault{Hang: true}, false, 0, "per-attempt timeout"},
		{"500", loopback.Fault{Status: 500, Body: []byte("upstream is down")}, false, 0, "500 Internal Server Error: «upstream is down»"},
		{"503", loopback.Fault{Status: 503}, false, 0, "503"},
		{"400", loopback.Fault{Status: 400, Body: []byte(`{"message":"bad payload"}`)}, true, 0, "bad payload"},
		{"401", loopback.Fault{Status: 401}, true, 0, "401 Unauthorized"},
		{"404", loopback.Fault{Status: 404}, true, 0, "404"},
		{"429 with Retry-After", loopback.Fault{Status: 429, RetryAfter: "7"}, false, 7 * time.Second, "429"},
		{"503 with Retry-After", loopback.Fault{Status: 503, RetryAfter: "9"}, false, 9 * time.Second, "503"},
		{"302 is not followed", loopback.Fault{Status: 302}, true, 0, "302"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := 10 * time.Second
			if tt.fault.Hang {
				timeout = 200 * time.Millisecond
			}
			n := rx.build(t, timeout)
			if rx.plain && tt.fault.Status == 400 {
				tt.fault.Times, tt.says = 2, "the plain form, sent because the full message was refused (400 Bad Request: bad payload): answered 400 Bad Request: «"+string(tt.fault.Body)+"»"
			}
			rx.fail(tt.fault)
			err := n.Deliver(t.Context(), deployFailed(), alerting.State{})
			if err == nil {
				t.Fatal("Deliver succeeded against a failing receiver")
			}
			if alerting.Permanent(err) != tt.permanent {
				t.Errorf("Permanent(%v) = %v, want %v", err, !tt.permanent, tt.permanent)
			}
			d, ok := alerting.RetryAfter(err)
			if (tt.retryAfter == 0 && ok) || (tt.retryAfter != 0 && d != tt.retryAfter) {
				t.Errorf("RetryAfter = %v %v, want %v", d, ok, tt.retryAfter)
			}
			if !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), n.Name()) {
				t.Errorf("error %q should name the notifier and say %q", err, tt.says)
			}
			var ae *alerting.Error
			if !errors.As(err, &ae) || (tt.fault.Status != 0 && ae.StatusCode != tt.fault.Status) {
				t.Errorf("error %#v should be an *alerting.Error with status %s", err, strconv.Itoa(tt.fault.Status))
			}
			assertNoSecret(t, rx.secrets, err.Error())
		})
	}
}
