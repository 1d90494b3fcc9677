package alerting_test

import (
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// A failure screenshot whose files.completeUploadExternal reached Slack and whose answer
// never came: Slack shared the file into the thread, the connection died (lost), or the
// agent was killed mid-upload and the outbox tells the retry (cut: Event.Interrupted, on
// the State from before that attempt). The retry, by a notifier built anew, finds the file
// in the thread (conversations.replies lists it by its name, which carries a tag of the
// delivery) and adopts it: one screenshot in the thread. Without channels:history it is
// uploaded again and the State says why. (The retry uploaded it again: the thread showed
// the screenshot twice.)
func TestSlackScreenshotWhoseAnswerWasLostIsNotUploadedTwice(t *testing.T) {
	t.Parallel()
	const done = "d-42:deploy_failed/file/0"
	for _, tc := range []struct {
		name       string
		cut        bool // the agent was killed mid-upload: the retry is on the State from before
		noScope    bool
		wantFiles  int
		wantLookup string
	}{
		{name: "answer lost", wantFiles: 1, wantLookup: "adopted"},
		{name: "agent killed mid-upload", cut: true, wantFiles: 1, wantLookup: "adopted"},
		{name: "token without channels:history", noScope: true, wantFiles: 2, wantLookup: "lacks the scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := loopback.NewSlack(t)
			srv.NoHistoryScope = tc.noScope
			cfg := slackConfig(srv.APIURL())
			logs := &vigiltest.Buffer{}
			n := newNotifier(t, cfg, logs)
			st := alerting.State{}
			if tc.cut { // an attempt posted the root; its upload failed and was recorded
				srv.Fail("upload", loopback.Fault{Status: 500})
				if err := n.Deliver(t.Context(), deployFailed(), st); err == nil {
					t.Fatal("the failed upload was taken for a shared file")
				}
			}
			saved := roundTrip(t, st)
			srv.Fail("files.completeUploadExternal", loopback.Fault{Drop: true}) // shared; the answer is lost
			if err := n.Deliver(t.Context(), deployFailed(), st); err == nil || alerting.Permanent(err) {
				t.Fatalf("the attempt whose answer was lost: %v; want a retryable error", err)
			}
			if len(srv.Files()) != 1 {
				t.Fatalf("Slack has %d files; want the lost attempt's shared", len(srv.Files()))
			}
			ev := deployFailed()
			if tc.cut {
				st, ev.Interrupted = saved, true // the killed attempt saved nothing
			} else {
				st = roundTrip(t, st)
			}
			n = newNotifier(t, cfg, logs) // the restarted agent's
			if err := n.Deliver(t.Context(), ev, st); err != nil {
				t.Fatalf("the retry: %v", err)
			}
			roots, files := srv.Roots(), srv.Files()
			if len(roots) != 1 || len(files) != tc.wantFiles {
				t.Fatalf("%d roots, %d files; want 1 root and %d files", len(roots), len(files), tc.wantFiles)
			}
			for _, f := range files {
				if f.ThreadTS != roots[0].TS {
					t.Errorf("file %s is not in the incident's thread %s: %+v", f.ID, roots[0].TS, f)
				}
			}
			if len(srv.CallsTo("conversations.replies")) == 0 {
				t.Error("the retry did not look in the thread")
			}
			if !strings.Contains(st[done+"/lookup"], tc.wantLookup) {
				t.Errorf("the State says of the lookup %q; want it to say %q", st[done+"/lookup"], tc.wantLookup)
			}
			if last := files[len(files)-1].ID; st[done] != last || st[done+"/unanswered"] != "" {
				t.Errorf("the State: file %q, unanswered mark %q; want %s and no mark", st[done], st[done+"/unanswered"], last)
			}
			if tc.wantLookup != "adopted" && !strings.Contains(logs.String(), "posted again") {
				t.Errorf("the log does not say the screenshot was uploaded again:\n%s", logs.String())
			}
		})
	}
}

// A screenshot whose sharing Slack refused with an answer was not shared, and one whose
// upload failed before files.completeUploadExternal was never shared: their retries read
// no thread, and upload it once.
func TestSlackScreenshotNotSharedIsNotLookedFor(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"files.completeUploadExternal", "upload", "files.getUploadURLExternal"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			srv, n, _ := newSlack(t)
			if method == "files.completeUploadExternal" {
				srv.Fail(method, loopback.Fault{SlackError: "internal_error"})
			} else {
				srv.Fail(method, loopback.Fault{Drop: true})
			}
			st := alerting.State{}
			if err := n.Deliver(t.Context(), deployFailed(), st); err == nil {
				t.Fatalf("the failed %s was taken for a shared file", method)
			}
			if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
				t.Fatal(err)
			}
			if c := srv.CallsTo("conversations.replies"); len(c) != 0 || len(srv.Files()) != 1 {
				t.Errorf("%d thread reads, %d files; want none and one", len(c), len(srv.Files()))
			}
		})
	}
}
