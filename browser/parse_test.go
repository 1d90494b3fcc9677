package browser

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chromedp/cdproto/network"
)

func TestDecodePayload(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Exception
		bad  bool
	}{
		{in: `{"t":"error","m":"Uncaught TypeError: x is not a function","u":"http://h/a.js","l":3,"c":7,"s":"TypeError: x\n    at f (http://h/a.js:3:7)"}`,
			want: Exception{Kind: KindException, Message: "TypeError: x is not a function", URL: "http://h/a.js", Line: 3, Column: 7, Stack: "TypeError: x\n    at f (http://h/a.js:3:7)"}},
		{in: `{"t":"rejection","m":"Error: nope","s":"Error: nope\n    at http://h/b.js:10:2"}`,
			want: Exception{Kind: KindRejection, Message: "Error: nope", URL: "http://h/b.js", Line: 10, Column: 2, Stack: "Error: nope\n    at http://h/b.js:10:2"}},
		{in: `{"t":"error","m":"x","l":-4,"c":-1}`, want: Exception{Kind: KindException, Message: "x"}},
		{in: `{"t":"other","m":"x"}`, bad: true},
		{in: `not json`, bad: true},
		{in: `{"t":"error","m":` + strings.Repeat(`"`, 1) + strings.Repeat("a", maxPayload) + `"}`, bad: true},
	} {
		got, err := decodePayload(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("%.60s: err %v", tc.in, err)
			continue
		}
		if !tc.bad && got != tc.want {
			t.Errorf("%.60s:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

// FuzzDecodePayload: the payload comes from the page, which can call the binding with
// anything before the injected script hides it.
func FuzzDecodePayload(f *testing.F) {
	f.Add(`{"t":"error","m":"Uncaught TypeError: x","u":"http://h/a.js","l":3,"c":7,"s":"at f (http://h/a.js:3:7)"}`)
	f.Add(`{"t":"rejection","m":"Error","s":"Error\n    at http://h/b.js:10:2"}`)
	f.Add(`{"t":"rejection","s":"    at (((((:99999999999999999999:1)"}`)
	f.Fuzz(func(t *testing.T, in string) {
		e, err := decodePayload(in)
		if err != nil {
			return
		}
		if e.Kind != KindException && e.Kind != KindRejection {
			t.Fatalf("kind %q", e.Kind)
		}
		if len(e.Message) > maxMessage+len("…") || len(e.URL) > maxURL+len("…") || len(e.Stack) > maxStack+len("…") {
			t.Fatalf("unbounded field: %d %d %d", len(e.Message), len(e.URL), len(e.Stack))
		}
		if e.Line < 0 || e.Column < 0 {
			t.Fatalf("negative location %d:%d", e.Line, e.Column)
		}
		if utf8.ValidString(in) && !utf8.ValidString(e.Message+e.URL+e.Stack) {
			t.Fatal("clipping split a rune")
		}
		_ = e.String()
	})
}

func TestParseStat(t *testing.T) {
	comm, state, ppid, ok := parseStat([]byte("4242 (chrome (x) y) Z 17 4242 4242 0 -1"))
	if !ok || comm != "chrome (x) y" || state != 'Z' || ppid != 17 {
		t.Errorf("got %q %c %d %t", comm, state, ppid, ok)
	}
	for _, bad := range []string{"", "12 chrome S 1", "12 (x) SS 1", "12 (x) S", "12 (x) S y"} {
		if _, _, _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (chrome) Z 17 4242 4242 0 -1"))
	f.Add([]byte("1 ()) ) S 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		comm, _, _, ok := parseStat(b)
		if ok && len(comm) > len(b) {
			t.Fatal("comm longer than its input")
		}
	})
}

func TestMergeExceptionsCountsEachThrowOnce(t *testing.T) {
	cdp := []seqException{
		{Exception{Kind: KindException, Message: "TypeError: a", URL: "u", Line: 1}, 1},
		{Exception{Kind: KindException, Message: "TypeError: a", URL: "u", Line: 1}, 3},
	}
	page := []seqException{
		{Exception{Kind: KindException, Message: "TypeError: a", URL: "u", Line: 1, Stack: "s"}, 2},
		{Exception{Kind: KindException, Message: "TypeError: a", URL: "u", Line: 1}, 4},
		{Exception{Kind: KindException, Message: "Error: hidden by preventDefault", URL: "u", Line: 9}, 5},
		{Exception{Kind: KindException, Message: "Script error."}, 6},
	}
	got := mergeExceptions(cdp, page, nil)
	if len(got) != 4 || got[0].Stack != "s" || got[2].Message != "Error: hidden by preventDefault" || got[3].Message != "Script error." {
		t.Errorf("merged: %+v", got)
	}
}

// One missing stylesheet is one problem, however many requests and events Chromium
// reports it with.
func TestFailedRequestCountedOnce(t *testing.T) {
	r := newRecorder()
	for _, id := range []network.RequestID{"1", "2"} { // the preload scanner and the parser
		r.response(&network.EventResponseReceived{RequestID: id, Type: network.ResourceTypeStylesheet,
			Response: &network.Response{URL: "http://127.0.0.1/missing.css", Status: 404, StatusText: "Not Found"}})
	}
	r.response(&network.EventResponseReceived{RequestID: "3", Type: network.ResourceTypeScript,
		Response: &network.Response{URL: "http://127.0.0.1/missing.js", Status: 404, StatusText: "Not Found"}})
	if len(r.failed) != 2 {
		t.Fatalf("want the stylesheet and the script once each: %+v", r.failed)
	}
}

// CDP does not order a request's events: the status (responseReceivedExtraInfo) can come
// before requestWillBeSent, or after the load was cancelled. A 404 stylesheet is one
// failed request in every order.
func TestFailedRequestInAnyEventOrder(t *testing.T) {
	css := &network.Request{URL: "http://127.0.0.1/missing.css", Method: "GET"}
	sent := &network.EventRequestWillBeSent{RequestID: "1", Request: css, Type: network.ResourceTypeStylesheet}
	extra := &network.EventResponseReceivedExtraInfo{RequestID: "1", StatusCode: 404}
	cancelled := &network.EventLoadingFailed{RequestID: "1", Type: network.ResourceTypeStylesheet, Canceled: true, ErrorText: "net::ERR_ABORTED"}
	for name, order := range map[string][]any{
		"sent, status, cancelled":  {sent, extra, cancelled},
		"status, sent, cancelled":  {extra, sent, cancelled},
		"sent, cancelled, status":  {sent, cancelled, extra},
		"sent, cancelled, no 404s": {sent, cancelled, &network.EventResponseReceivedExtraInfo{RequestID: "1", StatusCode: 200}},
	} {
		r := newRecorder()
		for _, ev := range order {
			r.listen(ev)
		}
		want := 1
		if name == "sent, cancelled, no 404s" {
			want = 0 // a load the page abandoned is not a failure
		}
		if len(r.failed) != want {
			t.Errorf("%s: %d failed requests %+v; want %d", name, len(r.failed), r.failed, want)
		}
	}
}
