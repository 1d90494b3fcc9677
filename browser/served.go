package browser

// The version of the service that served a page: a deploy's verification judges the new
// version's pages, not those of old pods still answering (a rollout not done, a load
// balancer draining).

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
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

// versionScript reads the text of the first element sel finds, or its attribute attr when
// attr is set, cut to maxMessage in the page (a page may put megabytes there): "" when
// there is none. The selector and the attribute go in as JSON strings, never as code; a
// selector the page cannot parse throws, and the read fails.
func versionScript(sel, attr string) string {
	s, _ := json.Marshal(sel)
	a, _ := json.Marshal(attr)
	return `(() => { const e = document.querySelector(` + string(s) + `); if (!e) return "";
  const v = ` + string(a) + ` ? e.getAttribute(` + string(a) + `) : e.textContent; return typeof v === "string" ? v.slice(0, ` + strconv.Itoa(maxMessage) + `) : ""; })()`
}

// versionTimeout bounds readVersion: a page still busy rendering answers late.
const versionTimeout = time.Second

// readVersion reads the version the page names in an element (Visit.VersionSelector),
// within versionTimeout, once the visit's work is done: a page whose scripts render the
// version (or fail to) is read as a visitor would see it. An element that is missing
// names none; a read that fails is in the transcript and names none either.
func (vr *visitRun) readVersion() {
	ctx, cancel := context.WithTimeout(vr.tabCtx, versionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](versionScript(vr.v.VersionSelector, vr.v.VersionAttribute)))
	if err != nil {
		vr.logf("served version: %s could not be read: %v", vr.v.VersionSelector, err)
		return
	}
	vr.rec.mu.Lock()
	vr.rec.version = text.Ellipsis(strings.TrimSpace(v), maxMessage)
	vr.rec.mu.Unlock()
}
