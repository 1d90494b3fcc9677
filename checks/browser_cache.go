package checks

import (
	"net/http"

	"github.com/vigil-monitor/vigil/browser"
)

// A page behind a cache (a CDN, Varnish, nginx's proxy_cache). In a deploy's verification
// the browser asks the caches to revalidate the main frame's documents (Visit.Revalidate:
// those requests alone, since the header on the page's cross-origin fetches would be a CORS
// preflight the page never asked for), and a document a cache still answered from a copy
// it stored before the deploy was registered is the old version's page: the run is
// inconclusive, as for http (http_cache.go). The page's scripts and styles are not judged
// this way: an old page's HTML decides which of them load, and a CDN keeps hashed assets
// for good, whatever the deploy.

// documentCache is what a document's answer says of the cache that gave it.
func documentCache(d browser.Document) cacheInfo {
	h := make(http.Header, len(d.Header))
	for k, v := range d.Header {
		h.Set(k, v) // HTTP/2 names come in lower case
	}
	return cacheOf(h.Get)
}

// setDocumentCacheVars sets cached and age_s from the page's last main-frame document.
func setDocumentCacheVars(run *Run, rep *browser.Report) {
	c := cacheInfo{age: -1}
	if n := len(rep.Documents); n > 0 {
		c = documentCache(rep.Documents[n-1])
	}
	setCacheVars(run, "", c)
}

// judgeDocuments: in a deploy's verification, a main-frame document (the page, a
// redirect's, a journey's later navigations) that a cache stored before the deploy makes
// the run inconclusive. named: the page named its version (served_version), which alone
// says whose it is, as for http.
func judgeDocuments(run *Run, rep *browser.Report, named bool) error {
	if named {
		return nil
	}
	for _, d := range rep.Documents {
		c := documentCache(d)
		if !c.cached() {
			continue
		}
		run.Transcript.Printf("the page's document %s", d.URL)
		if err := judgeCached(run, c, d.Received); err != nil {
			return Inconclusivef("the page's document %s was %v", d.URL, err)
		}
	}
	return nil
}
