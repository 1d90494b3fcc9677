package agent

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The theme links go back to the page they came from, and never to another host, however
// the address is spelled (browsers drop tabs and line breaks and read \ as /).
func TestTheThemeGoesBackOnlyToThisAgent(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", withToken(webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 2"}.String()))
	cases := map[string]string{
		"/checks/home?range=7d": "/checks/home?range=7d",
		"/":                     "/",
		"":                      "/",
		"//evil.example":        "/",
		"/\\evil.example":       "/",
		"/\t/evil.example":      "/",
		"/\n/evil.example":      "/",
		"/\r\n/evil.example":    "/",
		"/checks/\\\\evil":      "/",
		"https://evil.example":  "/",
		"javascript:alert(1)":   "/",
		"evil.example":          "/",
	}
	for back, want := range cases {
		resp, _ := send(t, "GET", h.url+"/theme/dark?back="+url.QueryEscape(back), "")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("back=%q: %d to %q; want 303 to %q", back, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if c := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(c, themeCookie+"=dark") {
			t.Errorf("back=%q: no theme cookie: %q", back, c)
		}
	}
	if resp, _ := send(t, "GET", h.url+"/theme/evil?back=/", ""); resp.StatusCode != 404 || resp.Header.Get("Location") != "" {
		t.Errorf("an unknown theme: %d to %q; want 404", resp.StatusCode, resp.Header.Get("Location"))
	}
}
