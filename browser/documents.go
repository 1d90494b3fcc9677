package browser

// The main frame's documents as they were answered, for the caller to tell a page a cache
// kept (its Age, X-Cache...) from one the server sent now, and the revalidation a deploy's
// verification asks of those caches (Visit.Revalidate).

import (
	"fmt"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/vigil-monitor/vigil/internal/text"
)

// maxDocuments bounds Report.Documents: a page that reloads itself in a loop keeps its first
// answers, which are the ones a journey's judgement needs.
const maxDocuments = 20

// Document is one main-frame document's answer.
type Document struct {
	URL    string
	Status int
	// Header holds the response's headers as Chromium reports them (HTTP/2 names in lower
	// case; several values joined by a newline), each value clipped.
	Header map[string]string
	// Received is when its headers arrived: a cache's Age is as of then.
	Received time.Time
}

// noteDocument records a main-frame document's answer; r.mu is held.
func (r *recorder) noteDocument(resp *network.Response) {
	if len(r.docAnswers) >= maxDocuments {
		return
	}
	h := make(map[string]string, len(resp.Headers))
	for k, v := range resp.Headers {
		h[k] = text.Ellipsis(fmt.Sprint(v), maxMessage)
	}
	r.docAnswers = append(r.docAnswers, Document{URL: text.Ellipsis(resp.URL, maxURL), Status: int(resp.Status), Header: h, Received: time.Now()})
}

// revalidation is the headers that ask caches to revalidate a request with the origin, nil
// when the visit does not ask it or sets either header itself (it says what it asks of
// the caches).
func (v *Visit) revalidation() map[string]string {
	if !v.Revalidate {
		return nil
	}
	for _, name := range []string{"Cache-Control", "Pragma"} {
		if _, set := lookupFold(v.Headers, name); set {
			return nil
		}
	}
	return map[string]string{"Cache-Control": "no-cache", "Pragma": "no-cache"}
}

// mainFrameDocument: a paused request (Fetch.requestPaused) loads the main frame's
// document.
func (r *recorder) mainFrameDocument(typ network.ResourceType, frame cdp.FrameID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return typ == network.ResourceTypeDocument && (r.mainFrame == frame || r.mainFrame == "")
}
