package browser

// The version of the service that served a page: a deploy's verification judges the new
// version's pages, not those of old pods still answering (a rollout not done, a load
// balancer draining).

import (
	"strings"

	"github.com/chromedp/cdproto/network"
	"github.com/vigil-monitor/vigil/internal/text"
)

// setVersionHeader names the header in which documents give their version ("" for none).
func (r *recorder) setVersionHeader(name string) {
	r.mu.Lock()
	r.versionHeader = name
	r.mu.Unlock()
}

// headerValue is the value of the header name (any case: HTTP/2 names are lower case),
// clipped; "" when it is missing or not a string.
func headerValue(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return text.Ellipsis(strings.TrimSpace(s), maxMessage)
		}
	}
	return ""
}
