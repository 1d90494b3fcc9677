package agent

import (
	"encoding/xml"
	"html"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Badges read the board and the last result: after one passing run the health badge says
// "up" in green, uptime is 100%, the response time has a unit; the Shields.io endpoint
// answers the same in its schema; bad names and windows get a badge that says why.
func TestBadges(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 2"}.String())
	select { // uptime badges say "reading history" until the store's is read (history_test.go)
	case <-h.a.HistoryRead():
	case <-time.After(time.Minute):
		t.Fatal("the store's history was not read in a minute")
	}
	if status, out := h.request("POST", "/api/v1/checks/home/run", ""); status != 200 || out["outcome"] != "pass" {
		t.Fatalf("run now: %d %v", status, out)
	}
	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	for _, c := range []struct{ path, want string }{
		{"/badges/home/health.svg", ">up<"},
		{"/badges/home/uptime.svg?window=7d", ">100%<"},
		{"/badges/home/response.svg?window=1h", " ms<"},
		{"/badges/home/health.svg?label=%3Cb%3E", "&lt;b&gt;"}, // a label from the URL is escaped
	} {
		status, ctype, body := get(c.path)
		if status != 200 || !strings.HasPrefix(ctype, "image/svg+xml") || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s: %s", c.path, status, ctype, body)
		}
		if err := xml.Unmarshal([]byte(body), new(struct{})); err != nil {
			t.Errorf("%s is not well-formed XML: %v", c.path, err)
		}
	}
	status, out := h.request("GET", "/badges/home/shields.json?metric=uptime&window=24h", "")
	if status != 200 || out["schemaVersion"] != float64(1) || out["message"] != "100%" || out["label"] != "uptime 24h" || out["color"] == "" {
		t.Errorf("shields endpoint: %d %v", status, out)
	}
	for _, c := range []struct{ path, want string }{
		{"/badges/nope/health.svg", `unknown check "nope"`},
		{"/badges/home/uptime.svg?window=2d", "window must be 1h, 24h or 7d"},
		{"/badges/home/health.png", "badges end in .svg"},
	} {
		if status, ctype, body := get(c.path); status != 200 || !strings.HasPrefix(ctype, "image/svg+xml") || !strings.Contains(html.UnescapeString(body), c.want) {
			t.Errorf("%s: %d %s %s; want a badge saying %q (TestABadgeThatCannotBeDrawnIsStillABadge)", c.path, status, ctype, body, c.want)
		}
	}
}
