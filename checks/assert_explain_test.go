package checks

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/configs"
)

// An assertion that cannot be evaluated on an answer says which variable was missing, or
// of which kind, and why, not expr's internals ("invalid argument for len (type <nil>)
// (1:1)"): an http check against a loopback server whose answers lack what the assertion
// reads, each judged as a run judges it.
func TestAnAssertionThatCannotBeEvaluatedSaysWhatWasMissing(t *testing.T) {
	bodies := map[string]string{
		"/html":   "<html><body>maintenance</body></html>",
		"/broken": `{"results": [1, 2`,
		"/items":  `{"items": [1], "total": 1}`,
		"/result": `{"result": [1]}`,
		"/count":  `{"count": 3}`,
		"/empty":  `{}`,
		"/null":   `{"data": null}`,
		"/text":   `{"results": "none"}`,
		"/secret": `{"password": 12345678}`,
		"/nested": `{"data": {"rows": [], "next": 2}}`,
	}
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/html" {
			w.Header().Set("Content-Type", "text/html")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		fmt.Fprint(w, bodies[r.URL.Path])
	}))
	for _, c := range []struct{ path, assert, want string }{
		{"/html", "len(json.results) > 0", `json.results is missing (the body is not JSON)`},
		{"/broken", "len(json.results) > 0", `json.results is missing (the body looks like JSON and does not parse: unexpected end of JSON input)`},
		{"/items", "len(json.results) > 0", `len(json.results): json.results is missing (json has no "results"; its keys: items, total)`},
		{"/result", "len(json.results) > 0", `len(json.results): json.results is missing (json has no "results"; did you mean "result"?)`},
		{"/count", "len(json.count) > 0", `len(json.count): json.count is a number (3), which len cannot take; len counts the items of text, a list or a map, e.g. len(body) > 0`},
		{"/empty", "upper(json.name) == 'A'", `upper(json.name): json.name is missing (json has no "name"; it is empty)`},
		{"/items", "json.items[3] == 1", `json.items[3] is missing (json.items has 1 item)`},
		{"/null", "json.data.total > 0", `json.data.total is missing (json.data is null)`},
		{"/items", "json.total + json.count > 1", `json.total + json.count: json.count is missing (json has no "count"; its keys: items, total)`},
		{"/text", "json.results > 3", `json.results > 3: json.results is text ("none"); compare numbers with numbers and text with text (status == 200, body contains 'ok'), or convert with int(x), float(x) or string(x)`},
		{"/text", "json.results[0].id > 0", `json.results[0].id is missing (json.results[0] is a number (110), which has no fields or items)`},
		{"/secret", "len(json.password) > 0", `len(json.password): json.password is a number (****), which len cannot take`},
		{"/nested", "abs(json.data.prev) > 0", `abs(json.data.prev): json.data.prev is missing (json.data has no "prev"; its keys: next, rows)`},
		{"/html", "json.data.rows[0] == 1", `json.data.rows[0] is missing (the body is not JSON)`},
	} {
		t.Run(c.path+" "+c.assert, func(t *testing.T) {
			ch := buildOne(t, fmt.Sprintf("checks:\n  - name: c\n    kind: http\n    request: {url: %q}\n    assert: [%q]\n", srv.URL+c.path, c.assert))
			res := run(t, ch, Input{})
			want := c.assert + " could not be evaluated: " + c.want
			if res.Outcome != Fail || len(res.Reasons) != 1 || !strings.HasPrefix(res.Reasons[0], want) {
				t.Errorf("%s %q\nwant fail: %s", res.Outcome, res.Reasons, want)
			}
		})
	}
}

// A propagation reader's match expression that cannot be evaluated on an answer says so in
// the same words (it is quoted in the transcript's "last answer").
func TestAReadMatchThatCannotBeEvaluatedSaysWhatWasMissing(t *testing.T) {
	m := (&builder{}).readMatch("checks[0].read[0].match", configs.ReadMatch{Expr: "any(json.rows, .marker == nonce)"})
	for _, c := range []struct {
		resp *Response
		want string
	}{
		{&Response{Status: 200, Body: []byte(`{"items": []}`), JSON: map[string]any{"items": []any{}}},
			`any(json.rows, .marker == nonce): json.rows is missing (json has no "rows"; its keys: items)`},
		{&Response{Status: 200, Body: []byte(`<html>maintenance</html>`)}, `json.rows is missing (the body is not JSON)`},
	} {
		ok, err := m.shows(c.resp, "n1")
		if ok || err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, %v; want the error %s", c.resp.Body, ok, err, c.want)
		}
	}
	// Only a 2xx answer shows the marker: a 502 is not evaluated (TestPropagationAnErrorPageIsNoShowing).
	if ok, err := m.shows(&Response{Status: 502, Body: []byte(`bad gateway`)}, "n1"); ok || err != nil {
		t.Errorf("a 502: %v, %v; want not shown, and no error", ok, err)
	}
}
