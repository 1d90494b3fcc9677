package browser

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A deploy that serves the page as a download (Content-Disposition: attachment, or a
// Content-Type Chromium does not render, such as application/octet-stream) leaves visitors
// with a file instead of the page. Chromium aborts the navigation (net::ERR_ABORTED); the
// visit ends in a DownloadError that says what the server sent, for the check to fail on,
// whether the first navigation or a journey's later one was served so.
func TestPageServedAsADownload(t *testing.T) {
	needBrowser(t)
	s := newSite(t)
	serve := func(path, contentType, disposition string) {
		s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			if disposition != "" {
				w.Header().Set("Content-Disposition", disposition)
			}
			fmt.Fprint(w, `<!doctype html><title>Shop</title><div id=app data-ready=1>ok</div>`)
		})
	}
	serve("/attachment", "text/html; charset=utf-8", `attachment; filename="index.html"`)
	serve("/octet", "application/octet-stream", "")
	s.html("/", `<!doctype html><title>Shop</title><div id=app data-ready=1>ok</div>`)

	for _, tc := range []struct {
		name                 string
		visit                Visit
		url                  string
		contentType, disp    string
		filename, reasonPart string
	}{
		{name: "attachment", visit: Visit{URL: s.URL + "/attachment", WaitFor: "#app"}, url: s.URL + "/attachment",
			contentType: "text/html; charset=utf-8", disp: `attachment; filename="index.html"`, filename: "index.html",
			reasonPart: `Content-Disposition: attachment; filename="index.html"`},
		{name: "octet-stream", visit: Visit{URL: s.URL + "/octet", WaitFor: "#app"}, url: s.URL + "/octet",
			contentType: "application/octet-stream", filename: "octet", reasonPart: "Content-Type: application/octet-stream"},
		{name: "a journey's later navigation", url: s.URL + "/octet", contentType: "application/octet-stream", filename: "octet",
			visit:      Visit{URL: s.URL + "/", WaitFor: "#app", Steps: []Step{{Kind: StepNavigate, URL: s.URL + "/octet"}}},
			reasonPart: "Content-Type: application/octet-stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const timeout = 15 * time.Second
			v := tc.visit
			rep, took, err := visit(t, shared, timeout, &v)
			checkEnded(t, took, timeout)
			var de *DownloadError
			if !errors.As(err, &de) {
				t.Fatalf("want a DownloadError, got %v", err)
			}
			if de.URL != tc.url || de.Status != 200 || de.ContentType != tc.contentType || de.Disposition != tc.disp || de.Filename != tc.filename {
				t.Errorf("download error %+v, want url %s, status 200, content type %q, disposition %q, file %q", de, tc.url, tc.contentType, tc.disp, tc.filename)
			}
			for _, want := range []string{"GET " + tc.url, "served as a download", "200", tc.reasonPart, "net::ERR_ABORTED"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if rep.Loaded {
				t.Error("a download reported as a loaded page")
			}
		})
	}
	// Chromium aborts a 204 or 205 too, with no download: nothing to show, at once, not
	// after the wait for a download event.
	for _, status := range []int{http.StatusNoContent, http.StatusResetContent} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			path := fmt.Sprintf("/empty%d", status)
			s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) })
			for _, v := range []Visit{{URL: s.URL + path}, {URL: s.URL + "/", WaitFor: "#app", Steps: []Step{{Kind: StepNavigate, URL: s.URL + path}}}} {
				var mu sync.Mutex
				var transcript strings.Builder
				v.Logf = func(f string, a ...any) {
					mu.Lock()
					defer mu.Unlock()
					fmt.Fprintf(&transcript, f+"\n", a...)
				}
				_, _, err := visit(t, shared, 15*time.Second, &v)
				mu.Lock()
				defer mu.Unlock()
				t.Logf("transcript:\n%s", transcript.String())
				var np *NoPageError
				if !errors.As(err, &np) || np.Status != status || np.URL != s.URL+path {
					t.Fatalf("want a NoPageError for %d, got %v", status, err)
				}
				for _, want := range []string{"GET " + s.URL + path, fmt.Sprint(status), "has no page", "net::ERR_ABORTED"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if !strings.Contains(transcript.String(), "no page to show") {
					t.Error("the transcript does not say the answer had no page")
				}
			}
		})
	}
	// A page that loads is no download, and a download a journey's click starts (an
	// invoice link) is the page working, not a page served as a file.
	t.Run("a page, and a download it links to", func(t *testing.T) {
		s.html("/invoice", `<!doctype html><title>Invoice</title><a id=dl href=/attachment>download</a><div id=app data-ready=1>ok</div>`)
		rep, _, err := visit(t, shared, 15*time.Second, &Visit{URL: s.URL + "/invoice", WaitFor: "#app",
			Steps: []Step{{Kind: StepClick, Selector: "#dl"}, {Kind: StepSleep, Sleep: 300 * time.Millisecond}}})
		if err != nil || !rep.Loaded || rep.StepError != "" {
			t.Fatalf("err %v, loaded %t, step error %q", err, rep.Loaded, rep.StepError)
		}
	})
}
