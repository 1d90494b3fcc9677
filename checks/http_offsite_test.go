package checks

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestRedirectedOffTheSiteAfterADeploy: a deploy that lost its session settings sends
// every page 302 to an identity provider's login form, which answers 200. The status
// assertions passed it (the default, and "status == 200"), and the verification passed a
// deploy no visitor could use. In a verification whose baseline ended on the site asked,
// an answer from another site fails; a check whose runs before the deploy already ended
// elsewhere (a page behind a login), or one outside a verification, is judged as ever.
func TestRedirectedOffTheSiteAfterADeploy(t *testing.T) {
	idp := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html><form>Sign in</form></html>")
	}))
	login := strings.Replace(idp.URL, "127.0.0.1", "localhost", 1) + "/authorize?client_id=shop" // another host
	app := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, login, http.StatusFound)
	}))
	deploy := &Deploy{ID: "d1", Service: "web", Version: "v2"}
	for _, tc := range []struct {
		name   string
		assert string
		in     Input
		want   Outcome
	}{
		{"default assertion, in a verification", "", Input{Deploy: deploy, Baseline: map[string]any{"url": app.URL + "/"}}, Fail},
		{"status == 200, in a verification", "\n    assert: [\"status == 200\"]", Input{Deploy: deploy, Baseline: map[string]any{"url": app.URL + "/"}}, Fail},
		{"behind a login before the deploy too", "", Input{Deploy: deploy, Baseline: map[string]any{"url": login}}, Pass},
		{"no baseline", "", Input{Deploy: deploy}, Pass},
		{"scheduled", "", Input{}, Pass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := buildOne(t, fmt.Sprintf("checks:\n  - name: home\n    kind: http\n    timeout: 5s\n    request: {url: %q}%s\n", app.URL+"/", tc.assert))
			res := c.Run(context.Background(), tc.in)
			t.Logf("%s %q", res.Outcome, res.Reasons)
			wantOutcome(t, res, tc.want)
			if tc.want == Fail && !strings.Contains(res.Reasons[0], "redirected off the site: the answer came from http://localhost:") {
				t.Errorf("reasons %q", res.Reasons)
			}
		})
	}
}
