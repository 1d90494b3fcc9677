package agent

import (
	"testing"
	"time"
)

// locations.wait, and a service's verify.locations.wait over it, are how long a location
// that has reported on a deploy waits for the others before the verdict is given with the
// answers there are: the wait a reporting location sets its deadline by (quorumWait, read
// by awaitLocations) is the service's own, else the top-level one. (The watch loop drops a
// deadline of a deploy it is not verifying, so the test reads the wait, not the deadline.)
func TestLocationsWaitKeysSetTheDeadlineForTheOtherLocations(t *testing.T) {
	h := startAgent(t, "", `agent: {api_token: s3cret-token}
locations: {wait: 40s}
checks:
  - {name: home, kind: http, every: 24h, request: {url: "http://127.0.0.1:1/"}}
services:
  own: {checks: [home], verify: {locations: {wait: 3s}}}
  inherits: {checks: [home]}
`)
	for _, tc := range []struct {
		service string
		want    time.Duration
	}{
		{"own", 3 * time.Second},
		{"inherits", 40 * time.Second},
	} {
		if got := h.a.quorumWait(tc.service); got != tc.want {
			t.Errorf("%s: waits %s for the other locations; want %s", tc.service, got, tc.want)
		}
	}
}
