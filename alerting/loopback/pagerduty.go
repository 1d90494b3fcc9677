package loopback

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// PagerDutyRoutingKey is the integration key the PagerDuty receiver accepts by default.
const PagerDutyRoutingKey = "R0VIGILTESTROUTINGKEY00000000000"

// PagerDuty is a loopback PagerDuty Events v2 endpoint: POST /v2/enqueue (trigger,
// acknowledge, resolve) and POST /v2/change/enqueue. It validates events as PagerDuty does
// (routing key, action, payload fields) and records the accepted ones.
type PagerDuty struct {
	server
	// RoutingKey is the key it accepts; anything else is a 400.
	RoutingKey string

	mu      sync.Mutex
	calls   []PagerDutyCall
	events  []PagerDutyEvent
	changes []PagerDutyChange
	open    map[string]bool
}

// PagerDutyCall is one request as it arrived, accepted or not.
type PagerDutyCall struct {
	Path   string
	Body   []byte
	Status int // 0: held until the client left
	At     time.Time
}

// PagerDutyEvent is an accepted Events v2 event.
type PagerDutyEvent struct {
	RoutingKey string            `json:"routing_key"`
	Action     string            `json:"event_action"`
	DedupKey   string            `json:"dedup_key"`
	Client     string            `json:"client"`
	ClientURL  string            `json:"client_url"`
	Links      []json.RawMessage `json:"links"`
	Payload    *struct {
		Summary   string         `json:"summary"`
		Source    string         `json:"source"`
		Severity  string         `json:"severity"`
		Timestamp string         `json:"timestamp"`
		Component string         `json:"component"`
		Group     string         `json:"group"`
		Class     string         `json:"class"`
		Details   map[string]any `json:"custom_details"`
	} `json:"payload"`
}

// PagerDutyChange is an accepted change event.
type PagerDutyChange struct {
	RoutingKey string `json:"routing_key"`
	Payload    struct {
		Summary   string         `json:"summary"`
		Source    string         `json:"source"`
		Timestamp string         `json:"timestamp"`
		Details   map[string]any `json:"custom_details"`
	} `json:"payload"`
	Links []struct {
		Href string `json:"href"`
		Text string `json:"text"`
	} `json:"links"`
}

// NewPagerDuty starts a PagerDuty receiver on 127.0.0.1 for the test.
func NewPagerDuty(tb testing.TB) *PagerDuty {
	p := &PagerDuty{}
	mustStart(tb, func() error { return p.Start("") }, p.Close)
	return p
}

// Start listens on addr ("" for 127.0.0.1 and a free port).
func (p *PagerDuty) Start(addr string) error {
	if p.RoutingKey == "" {
		p.RoutingKey = PagerDutyRoutingKey
	}
	p.open = map[string]bool{}
	return p.start(addr, http.HandlerFunc(p.handle))
}

// URL is the value for a notifier's url: the full enqueue URL.
func (p *PagerDuty) URL() string { return "http://" + p.Addr() + "/v2/enqueue" }

// Fail queues a fault for a path: "/v2/enqueue" or "/v2/change/enqueue".
func (p *PagerDuty) Fail(path string, f Fault) { p.fail(path, f) }

// Calls returns every request that arrived.
func (p *PagerDuty) Calls() []PagerDutyCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// Events returns the accepted events of /v2/enqueue, in order.
func (p *PagerDuty) Events() []PagerDutyEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// Changes returns the accepted change events.
func (p *PagerDuty) Changes() []PagerDutyChange {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.changes)
}

// Open reports whether an alert with the dedup key is triggered and not resolved.
func (p *PagerDuty) Open(dedupKey string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open[dedupKey]
}

func (p *PagerDuty) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || (r.URL.Path != "/v2/enqueue" && r.URL.Path != "/v2/change/enqueue") {
		http.NotFound(w, r)
		return
	}
	call := PagerDutyCall{Path: r.URL.Path, At: time.Now()}
	call.Body, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
	// The call is on record before the client hears the answer.
	p.mu.Lock()
	idx := len(p.calls)
	p.calls = append(p.calls, call)
	p.mu.Unlock()
	record := func(status int) {
		p.mu.Lock()
		p.calls[idx].Status = status
		p.mu.Unlock()
	}
	if f, ok := p.takeFault(r.URL.Path); ok {
		record(f.status())
		p.answerFault(w, r, f)
		return
	}
	invalid := func(msg string) {
		record(http.StatusBadRequest)
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": []string{msg}})
	}
	if r.URL.Path == "/v2/change/enqueue" {
		var c PagerDutyChange
		if err := json.Unmarshal(call.Body, &c); err != nil {
			invalid("body is not JSON: " + err.Error())
			return
		}
		if c.RoutingKey != p.RoutingKey {
			invalid("'routing_key' is invalid")
			return
		}
		if c.Payload.Summary == "" {
			invalid("'payload.summary' is missing")
			return
		}
		p.mu.Lock()
		p.changes = append(p.changes, c)
		p.mu.Unlock()
		record(http.StatusAccepted)
		writeJSON(w, http.StatusAccepted, map[string]any{"status": "success", "message": "Change event processed"})
		return
	}
	var e PagerDutyEvent
	if err := json.Unmarshal(call.Body, &e); err != nil {
		invalid("body is not JSON: " + err.Error())
		return
	}
	if e.RoutingKey != p.RoutingKey {
		invalid("'routing_key' is invalid")
		return
	}
	switch e.Action {
	case "trigger":
		if e.Payload == nil || e.Payload.Summary == "" || e.Payload.Source == "" {
			invalid("'payload' needs summary and source")
			return
		}
		if !slices.Contains([]string{"critical", "error", "warning", "info"}, e.Payload.Severity) {
			invalid(fmt.Sprintf("'payload.severity' %q is invalid", e.Payload.Severity))
			return
		}
		if len(e.Payload.Summary) > 1024 {
			invalid("'payload.summary' is over 1024 characters")
			return
		}
		if e.DedupKey == "" {
			e.DedupKey = fmt.Sprintf("generated-%d", idx+1)
		}
	case "acknowledge", "resolve":
		if e.DedupKey == "" {
			invalid("'dedup_key' is required to " + e.Action)
			return
		}
	default:
		invalid(fmt.Sprintf("'event_action' %q is invalid", e.Action))
		return
	}
	if len(e.DedupKey) > 255 {
		invalid("'dedup_key' is over 255 characters")
		return
	}
	p.mu.Lock()
	p.events = append(p.events, e)
	switch e.Action {
	case "trigger":
		p.open[e.DedupKey] = true
	case "resolve":
		delete(p.open, e.DedupKey)
	}
	p.mu.Unlock()
	record(http.StatusAccepted)
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "success", "message": "Event processed", "dedup_key": e.DedupKey})
}
