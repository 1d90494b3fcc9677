package browser

// Scripts and stylesheets of the page that never ran or applied although no request of
// theirs failed. After a deploy with old and new servers side by side, the new page names
// hashed files (/assets/index-3f9a1c.js) an old server does not have, and a server that
// answers every unknown path with the site's page (an SPA fallback) sends them as
// text/html with 200 OK: Chromium refuses a module script or a script sent with
// X-Content-Type-Options: nosniff, and the app never starts, with no exception and no
// failed request. (A stylesheet it refuses for its type still fires "load": not seen.) Likewise an inline script that the
// page's Content-Security-Policy blocks (a nonce or hash the new release's policy does not
// allow) never runs and makes no request. The injected listeners report both (inject.go);
// each is a failed request of its type, the script's or stylesheet's, unless a failed
// request of that file was already recorded.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/chromedp/cdproto/network"
	"github.com/vigil-monitor/vigil/internal/text"
)

// refusal is one script or stylesheet that never ran or applied.
type refusal struct {
	typ string // "script" or "stylesheet"
	// url is the file's; for an inline script, its document's, with line and col.
	url       string
	line, col int
	// directive and policy are an inline script's Content-Security-Policy violation; ""
	// for a file.
	directive, policy string
}

// maxPolicy bounds the policy quoted in a blocked inline script's reason.
const maxPolicy = 300

// decodeRefusal reads a "load" or "csp" report of the injected script; everything in it
// came from the page, so it is bounded and checked.
func decodeRefusal(payload string) (refusal, error) {
	if len(payload) > maxPayload {
		return refusal{}, errBadPayload
	}
	var p struct {
		pagePayload
		K string `json:"k"`
	}
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return refusal{}, errBadPayload
	}
	rf := refusal{url: text.Ellipsis(withoutFragment(p.U), maxURL)}
	switch {
	case p.T == "load" && (p.K == "script" || p.K == "stylesheet") && p.U != "":
		rf.typ = p.K
	case p.T == "csp" && p.M != "":
		rf.typ = "script"
		rf.line, rf.col = max(p.L, 0), max(p.C, 0)
		rf.directive, rf.policy = text.Ellipsis(p.M, 100), text.Ellipsis(p.S, maxPolicy)
	default:
		return refusal{}, errBadPayload
	}
	return rf, nil
}

// withoutFragment is u without its #fragment: the network events name a request without it.
func withoutFragment(u string) string {
	if i := strings.IndexByte(u, '#'); i >= 0 {
		return u[:i]
	}
	return u
}

// addRefusal records a refusal. Past the cap they are not kept, nor counted: most are a
// failed request's second report, told apart only when the list is filled.
func (r *recorder) addRefusal(rf refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems.Add(1)
	if len(r.refused) < maxEntries {
		r.refused = append(r.refused, rf)
	}
}

// noteServed remembers how a script or stylesheet was answered when its type is not one a
// browser runs or applies, to say why it was refused; r.mu must be held.
func (r *recorder) noteServed(typ network.ResourceType, resp *network.Response) {
	mime := strings.ToLower(resp.MimeType)
	switch {
	case resp.Status >= 400, len(r.servedAs) >= maxEntries:
		return
	case typ == network.ResourceTypeScript && !strings.Contains(mime, "javascript") && !strings.Contains(mime, "ecmascript"),
		typ == network.ResourceTypeStylesheet && mime != "text/css":
		r.servedAs[text.Ellipsis(resp.URL, maxURL)] = fmt.Sprintf("%d %s as %s", resp.Status, http.StatusText(int(resp.Status)), text.Ellipsis(mime, 100))
	}
}

// noteFailedFile remembers the addresses of a script or stylesheet whose request failed
// (first is where its redirects began, "" without any): the page's own report of it is
// the same failure. r.mu must be held.
func (r *recorder) noteFailedFile(f FailedRequest, first string) {
	if (f.Type != "script" && f.Type != "stylesheet") || len(r.failedFiles) >= 4*maxEntries {
		return
	}
	r.failedFiles[f.URL] = true
	if first != "" {
		r.failedFiles[first] = true
	}
}

// refusedFiles are the refusals no failed request reported, as failed requests; r.mu must
// be held.
func (r *recorder) refusedFiles() []FailedRequest {
	var out []FailedRequest
	for _, rf := range r.refused {
		switch {
		case rf.directive != "":
			what := "inline script"
			if rf.line > 0 {
				what += fmt.Sprintf(" at line %d", rf.line)
			}
			out = append(out, FailedRequest{URL: rf.url, Type: rf.typ, Error: fmt.Sprintf(
				"%s blocked by the page's Content-Security-Policy (%s in %q): it never ran", what, rf.directive, rf.policy)})
		case r.failedFiles[rf.url]:
		default:
			verb := "run"
			if rf.typ == "stylesheet" {
				verb = "apply"
			}
			why := "the browser did not " + verb + " it: its element reported a failed load, and no request of it failed"
			if as := r.servedAs[rf.url]; as != "" {
				why = "answered " + as + ", which the browser refused to " + verb
			}
			out = append(out, FailedRequest{Method: "GET", URL: rf.url, Type: rf.typ, Error: why})
		}
	}
	return out
}
