package loopback

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// OpsgenieAPIKey is the key the Opsgenie receiver accepts by default.
const OpsgenieAPIKey = "0a1b2c3d-vigil-test-opsgenie-key-0000"

// Opsgenie is a loopback Opsgenie Alert API: POST /v2/alerts (create), POST
// /v2/alerts/{alias}/close?identifierType=alias and /notes?identifierType=alias. It checks
// the GenieKey and the fields as Opsgenie does (message of at most 130 characters, an alias,
// priorities P1 to P5, at most 20 tags of at most 50 characters, details of at most 8000
// characters in all, keys and values), answers 202 as Opsgenie does, and keeps the
// alerts by alias: a create for an open alias counts again, as Opsgenie de-duplicates.
type Opsgenie struct {
	server
	// APIKey is the key it accepts; anything else is a 401.
	APIKey string

	mu     sync.Mutex
	calls  []OpsgenieCall
	alerts map[string]*OpsgenieAlert
	order  []string
}

// OpsgenieCall is one request as it arrived, accepted or not.
type OpsgenieCall struct {
	Path   string // unescaped
	Query  url.Values
	Auth   string
	Body   []byte
	Status int // 0: held until the client left
	At     time.Time
}

// OpsgenieAlert is an alert as the receiver keeps it.
type OpsgenieAlert struct {
	Alias string
	// Create is the last create's body.
	Create map[string]any
	// Count is how many creates arrived for the alias while it was open.
	Count  int
	Open   bool
	Closes int
	Notes  []string
}

// NewOpsgenie starts an Opsgenie receiver on 127.0.0.1 for the test.
func NewOpsgenie(tb testing.TB) *Opsgenie {
	o := &Opsgenie{}
	mustStart(tb, func() error { return o.Start("") }, o.Close)
	return o
}

// Start listens on addr ("" for 127.0.0.1 and a free port).
func (o *Opsgenie) Start(addr string) error {
	if o.APIKey == "" {
		o.APIKey = OpsgenieAPIKey
	}
	o.alerts = map[string]*OpsgenieAlert{}
	return o.start(addr, http.HandlerFunc(o.handle))
}

// URL is the value for a notifier's api_url.
func (o *Opsgenie) URL() string { return "http://" + o.Addr() }

// Fail queues a fault for every Alert API request.
func (o *Opsgenie) Fail(f Fault) { o.fail("", f) }

// Calls returns every request that arrived.
func (o *Opsgenie) Calls() []OpsgenieCall {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.calls)
}

// Alert returns the alert with the alias, or nil.
func (o *Opsgenie) Alert(alias string) *OpsgenieAlert {
	o.mu.Lock()
	defer o.mu.Unlock()
	a := o.alerts[alias]
	if a == nil {
		return nil
	}
	c := *a
	c.Notes = slices.Clone(a.Notes)
	return &c
}

// Aliases returns the aliases of the alerts created, in order.
func (o *Opsgenie) Aliases() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.order)
}

func (o *Opsgenie) handle(w http.ResponseWriter, r *http.Request) {
	call := OpsgenieCall{Path: r.URL.Path, Query: r.URL.Query(), Auth: r.Header.Get("Authorization"), At: time.Now()}
	call.Body, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
	o.mu.Lock()
	idx := len(o.calls)
	o.calls = append(o.calls, call)
	o.mu.Unlock()
	answer := func(status int, v any) {
		o.mu.Lock()
		o.calls[idx].Status = status
		o.mu.Unlock()
		writeJSON(w, status, v)
	}
	fail := func(status int, msg string) {
		answer(status, map[string]any{"message": msg, "took": 0.001, "requestId": fmt.Sprintf("req-%d", idx+1)})
	}
	if f, ok := o.takeFault(""); ok {
		o.mu.Lock()
		o.calls[idx].Status = f.status()
		o.mu.Unlock()
		o.answerFault(w, r, f)
		return
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/v2/alerts") {
		fail(http.StatusNotFound, "no such endpoint")
		return
	}
	if call.Auth != "GenieKey "+o.APIKey {
		fail(http.StatusUnauthorized, "Could not authenticate")
		return
	}
	var body map[string]any
	if err := json.Unmarshal(call.Body, &body); err != nil {
		fail(http.StatusBadRequest, "body is not JSON: "+err.Error())
		return
	}
	if r.URL.Path == "/v2/alerts" {
		if msg := o.create(body); msg != "" {
			fail(http.StatusUnprocessableEntity, msg)
			return
		}
	} else {
		rest := strings.TrimPrefix(r.URL.Path, "/v2/alerts/")
		i := strings.LastIndex(rest, "/")
		if i < 0 || call.Query.Get("identifierType") != "alias" {
			fail(http.StatusBadRequest, "want /v2/alerts/{alias}/{close|notes}?identifierType=alias")
			return
		}
		alias, action := rest[:i], rest[i+1:]
		o.mu.Lock()
		a := o.alerts[alias]
		switch {
		case a == nil:
			// Opsgenie accepts it and fails later, asynchronously; the receiver records it.
		case action == "close":
			a.Open = false
			a.Closes++
		case action == "notes":
			note, _ := body["note"].(string)
			a.Notes = append(a.Notes, note)
		}
		o.mu.Unlock()
	}
	answer(http.StatusAccepted, map[string]any{"result": "Request will be processed", "took": 0.002, "requestId": fmt.Sprintf("req-%d", idx+1)})
}

// create checks and records a create; a non-empty result is why it is refused.
func (o *Opsgenie) create(body map[string]any) string {
	msg, _ := body["message"].(string)
	alias, _ := body["alias"].(string)
	prio, _ := body["priority"].(string)
	tags, _ := body["tags"].([]any)
	switch {
	case msg == "":
		return "Message can not be empty."
	case len([]rune(msg)) > 130:
		return "Message can not be longer than 130 characters."
	case alias == "" || len([]rune(alias)) > 512:
		return "the receiver wants an alias of 1 to 512 characters"
	case prio != "" && !slices.Contains([]string{"P1", "P2", "P3", "P4", "P5"}, prio):
		return "Priority should be one of [P1, P2, P3, P4, P5]"
	case len(tags) > 20:
		return "Tags can not have more than 20 elements"
	}
	for _, t := range tags {
		if s, _ := t.(string); s == "" || len([]rune(s)) > 50 {
			return "A tag can not be empty or longer than 50 characters."
		}
	}
	details, _ := body["details"].(map[string]any)
	total := 0
	for k, v := range details {
		s, _ := v.(string)
		total += len([]rune(k)) + len([]rune(s))
	}
	if total > 8000 {
		return fmt.Sprintf("Details can not be longer than 8000 characters in total (%d).", total)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	a := o.alerts[alias]
	if a == nil {
		a = &OpsgenieAlert{Alias: alias}
		o.alerts[alias] = a
		o.order = append(o.order, alias)
	}
	if !a.Open {
		a.Count = 0
	}
	a.Open, a.Create = true, body
	a.Count++
	return ""
}
