package browser

// Pages served as downloads. Chromium shows no page for a document sent with
// Content-Disposition: attachment, or with a Content-Type it does not render
// (application/octet-stream, application/zip...): it starts a download and ends the
// navigation with net::ERR_ABORTED, and every visitor gets a file instead of the page. A
// deploy that breaks a page this way (a proxy that loses the Content-Type, a handler that
// serves the bundle's index as a file) is the target's fault. Each tab denies downloads
// (vigil never writes what a page sends to disk) and asks for their events, so the visit
// can tell a download from another aborted navigation and say what the server sent.

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/vigil-monitor/vigil/internal/text"
)

// DownloadError is a visit's error when a navigation's document answered and Chromium
// made it a download instead of showing it: the server's answer, as far as it bears on
// that, and the file name Chromium gave it ("" when no download event came in time).
type DownloadError struct {
	URL         string
	Status      int
	ContentType string
	Disposition string
	Filename    string
}

func (e *DownloadError) Error() string {
	saved := "Chromium made it a download"
	if e.Filename != "" {
		saved = fmt.Sprintf("Chromium began downloading it as %q", e.Filename)
	}
	return fmt.Sprintf("GET %s: served as a download, not a page (%s): %s and showed no page (net::ERR_ABORTED); visitors get a file instead of the page",
		e.URL, e.sent(), saved)
}

// sent is what the server sent that made the document a download.
func (e *DownloadError) sent() string {
	sent := []string{fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))}
	if e.ContentType != "" {
		sent = append(sent, "Content-Type: "+e.ContentType)
	}
	if e.Disposition != "" {
		sent = append(sent, "Content-Disposition: "+e.Disposition)
	}
	return strings.Join(sent, ", ")
}

// NoPageError is a visit's error when a navigation's document answered with a status
// that has no page (204 No Content, 205 Reset Content): Chromium keeps what it showed
// before and aborts the navigation, and a visitor who follows the link sees nothing.
type NoPageError struct {
	URL    string
	Status int
}

func (e *NoPageError) Error() string {
	return fmt.Sprintf("GET %s: answered %d %s, which has no page: Chromium showed nothing (net::ERR_ABORTED); visitors get an empty answer instead of the page",
		e.URL, e.Status, http.StatusText(e.Status))
}

// noPage returns the NoPageError of a navigation that Chromium aborted after its
// document answered 204 or 205, at once: no download follows such an answer.
func (vr *visitRun) noPage() *NoPageError {
	doc := vr.rec.lastDocument()
	if doc.status != http.StatusNoContent && doc.status != http.StatusResetContent {
		return nil
	}
	return &NoPageError{URL: doc.url, Status: doc.status}
}

// downloadWait bounds the wait for Chromium's download event after the navigation it
// aborted: the event follows the navigation's end by a few milliseconds.
const downloadWait = time.Second

// servedAsDownload returns the DownloadError of a navigation that Chromium aborted after
// its document answered (downloadsBefore is how many downloads began before it), when
// the answer became a download; nil when it did not (a navigation cut short by another).
func (vr *visitRun) servedAsDownload(downloadsBefore int) *DownloadError {
	doc := vr.rec.lastDocument()
	de := &DownloadError{URL: doc.url, Status: doc.status, ContentType: doc.contentType, Disposition: doc.disposition}
	kind, _, _ := strings.Cut(doc.disposition, ";")
	attachment := strings.EqualFold(strings.TrimSpace(kind), "attachment")
	timer := time.NewTimer(downloadWait)
	defer timer.Stop()
	for {
		if n, name := vr.rec.downloadsBegun(); n > downloadsBefore {
			de.Filename = name
			return de
		}
		select {
		case <-vr.rec.downloadBegan:
			continue
		case <-timer.C:
		case <-vr.work.Done():
		}
		if attachment { // a download whatever its event says
			return de
		}
		return nil
	}
}

// docAnswer is what the last main-frame document's response said.
type docAnswer struct {
	url, contentType, disposition string
	// challenge is its WWW-Authenticate (or Proxy-Authenticate) header (auth.go).
	challenge string
	status    int
}

// lastDocument is the last main-frame document's answer.
func (r *recorder) lastDocument() docAnswer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.doc
}

// downloadsBegun is how many downloads Chromium began in the main frame, and the last
// one's file name.
func (r *recorder) downloadsBegun() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.downloads, r.lastDownload
}

// downloadWillBegin records a download of the main frame (a subframe's is the page's own
// doing) and wakes servedAsDownload.
func (r *recorder) downloadWillBegin(e *cdpbrowser.EventDownloadWillBegin) {
	r.mu.Lock()
	main := e.FrameID == r.mainFrame || r.mainFrame == ""
	if main {
		r.downloads++
		r.lastDownload = text.Ellipsis(e.SuggestedFilename, maxMessage)
	}
	r.mu.Unlock()
	if main {
		select {
		case r.downloadBegan <- struct{}{}:
		default:
		}
	}
}
