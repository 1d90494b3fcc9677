package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// A run's evidence is served as evidence, never as a page of the agent's origin: an HTML
// answer a check stored is plain text, a binary body a download, a screenshot an image,
// each with a policy that lets nothing in it run; names and runs that do not exist are
// 404; it asks for the status page's auth when the status page does.
func TestArtifactsAreNeverPages(t *testing.T) {
	h := startAgent(t, "", "agent: {api_token: s3cret-token, status_page_auth: true}\n"+
		"checks:\n  - {name: web, kind: http, every: 1h, request: {url: \"http://127.0.0.1:9/\"}}\n")
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	page := []byte(`<html><script>fetch("/api/v1/deploys",{method:"POST"})</script></html>`)
	binary := []byte{0, 1, 2, 0xff, 0xfe}
	run := &store.RunRecord{Check: "web", Kind: "http", Started: time.Now(), Duration: time.Millisecond, Outcome: "fail", Attempts: 1,
		Artifacts: []*store.Artifact{
			{Name: "screenshot.png", ContentType: "image/png", Data: png},
			{Name: "response-body.txt", ContentType: "text/html", Data: page},
			{Name: "response-body.bin", ContentType: "application/octet-stream", Data: binary},
			{Name: "page.svg", ContentType: "image/svg+xml", Data: []byte(`<svg onload="alert(1)"/>`)},
		}}
	if err := h.a.store.SaveRuns(context.Background(), []*store.RunRecord{run}); err != nil {
		t.Fatal(err)
	}
	get := func(path string, auth bool) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer s3cret-token")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	base := fmt.Sprintf("/runs/%d/artifacts/", run.ID)
	for _, tc := range []struct {
		name, contentType, disposition string
		body                           []byte
	}{
		{"screenshot.png", "image/png", `inline; filename="screenshot.png"`, png},
		{"response-body.txt", "text/plain; charset=utf-8", `inline; filename="response-body.txt"`, page},
		{"response-body.bin", "application/octet-stream", `attachment; filename="response-body.bin"`, binary},
		{"page.svg", "text/plain; charset=utf-8", `inline; filename="page.svg"`, []byte(`<svg onload="alert(1)"/>`)},
	} {
		resp, body := get(base+tc.name, true)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.contentType ||
			resp.Header.Get("Content-Disposition") != tc.disposition || !bytes.Equal(body, tc.body) {
			t.Errorf("%s: %d, Content-Type %q, Content-Disposition %q, body %q; want 200, %q, %q, %q", tc.name, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"), body, tc.contentType, tc.disposition, tc.body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); csp != "default-src 'none'" {
			t.Errorf("%s: Content-Security-Policy %q, want default-src 'none'", tc.name, csp)
		}
		if nosniff := resp.Header.Get("X-Content-Type-Options"); nosniff != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q: a browser may sniff it into a page", tc.name, nosniff)
		}
	}
	for _, tc := range []struct {
		path string
		auth bool
		want int
	}{
		{base + "screenshot.png", false, http.StatusUnauthorized},
		{base + "none.txt", true, http.StatusNotFound},
		{fmt.Sprintf("/runs/%d/artifacts/screenshot.png", run.ID+1000), true, http.StatusNotFound},
		{"/runs/-1/artifacts/screenshot.png", true, http.StatusNotFound},
		{base + "..%2f..%2fvigil.db", true, http.StatusNotFound},
		{"/runs/abc/artifacts/screenshot.png", true, http.StatusBadRequest},
		{"/runs/99999999999999999999/artifacts/screenshot.png", true, http.StatusBadRequest},
	} {
		resp, body := get(tc.path, tc.auth)
		if resp.StatusCode != tc.want || bytes.Contains(body, png) {
			t.Errorf("%s (token %v): %d %q, want %d", tc.path, tc.auth, resp.StatusCode, body, tc.want)
		}
	}
}
