package browser

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// dialogSite is a page that opens every kind of JavaScript dialog: an alert while its head
// is parsed (before the load event), a confirm and a prompt when a button is clicked, and a
// beforeunload prompt when a link is followed after that click.
func dialogSite(t *testing.T) *site {
	s := newSite(t)
	s.html("/", `<!doctype html><title>Account</title>
<script>alert("Session expired, please sign in again");</script>
<div id=home>home</div>
<button id=del onclick="delClicked()">Delete</button>
<div id=result></div>
<a id=leave href="/next">next</a>
<script>
function delClicked() {
  var sure = confirm("Delete your account?");
  var name = prompt("Your name?", "vigil");
  var r = document.getElementById('result');
  r.textContent = (sure ? 'deleted' : 'kept') + ' by ' + name;
  r.dataset.done = '1';
  window.addEventListener('beforeunload', function (e) { e.preventDefault(); e.returnValue = 'unsaved'; });
}
</script>`)
	s.html("/next", `<!doctype html><title>Next</title><div id=next>next</div>`)
	return s
}

// A page that opens dialogs no longer stalls: each one is recorded and answered as the
// visit asks, and the page goes on to load and run its journey.
func TestDialogsAreAnsweredAndRecorded(t *testing.T) {
	needBrowser(t)
	s := dialogSite(t)
	journey := func(waitResult, after string) []Step {
		return []Step{
			{Kind: StepClick, Selector: "#del"},
			{Kind: StepWaitFor, Selector: "#result[data-done]"},
			{Kind: StepAssertText, Selector: "#result", Text: waitResult},
			{Kind: StepClick, Selector: "#leave"},
			{Kind: StepSleep, Sleep: 300 * time.Millisecond},
			{Kind: StepWaitFor, Selector: after},
		}
	}
	for _, tc := range []struct {
		name    string
		answer  DialogAnswer
		result  string // what the page made of the confirm and the prompt
		after   string // the element visible once the link was followed, or not
		url     string
		accepts bool
	}{
		{"dismissed", DismissDialogs, "kept by null", "#home", "/", false},
		{"accepted", AcceptDialogs, "deleted by vigil", "#next", "/next", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const timeout = 20 * time.Second
			rep, took, err := visit(t, shared, timeout, &Visit{URL: s.URL + "/", WaitFor: "#home", Dialogs: tc.answer,
				Steps: journey(tc.result, tc.after)})
			checkEnded(t, took, timeout)
			if err != nil {
				t.Fatalf("visit: %v", err)
			}
			if !rep.Loaded || !rep.WaitForFound || rep.StepError != "" {
				t.Fatalf("a page with dialogs should load and run its journey: loaded %t, found %t, step %q: %s", rep.Loaded, rep.WaitForFound, rep.FailedStep, rep.StepError)
			}
			if !strings.HasSuffix(rep.URL, tc.url) {
				t.Errorf("page at the end: %s, want %s", rep.URL, tc.url)
			}
			var got []string
			for _, d := range rep.Dialogs {
				if d.Accepted != tc.accepts {
					t.Errorf("%s: accepted %t, want %t", d, d.Accepted, tc.accepts)
				}
				if !strings.HasPrefix(d.URL, s.URL+"/") {
					t.Errorf("%s: the frame's address is missing", d)
				}
				got = append(got, fmt.Sprintf("%s %s", d.Type, d.Message))
			}
			want := []string{"alert Session expired, please sign in again", "confirm Delete your account?", "prompt Your name?", "beforeunload "}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("dialogs:\n got %q\nwant %q", got, want)
			}
			if len(rep.Problems()) > 0 {
				t.Errorf("a dialog is not an error of the page:\n%s", problems(rep))
			}
		})
	}
}

// A dialog counts as a problem for Visit.Stop: a check that expects none stops at the
// first, with its evidence, instead of waiting out its wait_for.
func TestDialogStopsAVisitThatExpectsNone(t *testing.T) {
	needBrowser(t)
	s := dialogSite(t)
	const timeout = 20 * time.Second
	rep, took, err := visit(t, shared, timeout, &Visit{URL: s.URL + "/", WaitFor: "#never",
		Stop: func(r *Report) string {
			if len(r.Dialogs) > 0 {
				return r.Dialogs[0].String()
			}
			return ""
		}})
	checkEnded(t, took, timeout)
	if err != nil {
		t.Fatalf("visit: %v", err)
	}
	want := `alert "Session expired, please sign in again" (` + s.URL + `/): dismissed`
	if rep.StoppedEarly != want {
		t.Fatalf("stopped early: %q, want %q", rep.StoppedEarly, want)
	}
	if len(rep.Screenshot) == 0 {
		t.Error("no screenshot: an open dialog must not block the evidence")
	}
	if took > timeout/2 {
		t.Errorf("the visit waited for its deadline (%s) after the dialog", took)
	}
}
