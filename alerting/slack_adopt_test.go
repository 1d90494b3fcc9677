package alerting_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// A root message whose chat.postMessage reached Slack and whose answer was lost (the
// connection died after Slack posted it): the retry, by a notifier built anew on the State
// saved after the failed attempt (as after a restart), finds the message in the channel's
// history by its metadata and adopts it: one root, and the incident's follow-ups go into
// its thread. Without the scope to read the history, or with a channel known only by name,
// the root is posted again, as before the lookup, and the State says why. (The retry
// posted a second root: the thread split, the follow-ups went to the second.)
func TestSlackRootWhoseAnswerWasLostIsNotPostedTwice(t *testing.T) {
	t.Parallel()
	const key = "d-42:deploy_failed"
	for _, tc := range []struct {
		name       string
		byName     bool // channel configured as "#deploys", not its id
		warm       bool // the notifier posted to the channel before (it learned the id)
		noScope    bool // the token lacks channels:history
		wantRoots  int
		wantLookup string
	}{
		{name: "channel id", wantRoots: 1, wantLookup: "adopted"},
		{name: "channel name, id learned from an earlier post", byName: true, warm: true, wantRoots: 1, wantLookup: "adopted"},
		{name: "token without channels:history", noScope: true, wantRoots: 2, wantLookup: "lacks the scope"},
		{name: "channel name, id not known", byName: true, wantRoots: 2, wantLookup: "configured by name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := loopback.NewSlack(t)
			srv.NoHistoryScope = tc.noScope
			cfg := slackConfig(srv.APIURL())
			if !tc.byName {
				cfg.Channel = srv.Channel("deploys")
			}
			logs := &vigiltest.Buffer{}
			n := newNotifier(t, cfg, logs)
			if tc.warm {
				if err := n.Deliver(t.Context(), actionResult(), alerting.State{}); err != nil { // another incident's root
					t.Fatal(err)
				}
			}
			before := len(srv.Roots())
			srv.Fail("chat.postMessage", loopback.Fault{Drop: true})
			st := alerting.State{}
			err := n.Deliver(t.Context(), deployFailed(), st)
			if err == nil || alerting.Permanent(err) {
				t.Fatalf("the attempt whose answer was lost: %v; want a retryable error", err)
			}
			if len(srv.Roots()) != before+1 {
				t.Fatalf("Slack has %d roots; want the first attempt's posted", len(srv.Roots())-before)
			}
			if !tc.warm { // a restart: a new notifier on the saved State
				st = roundTrip(t, st)
				n = newNotifier(t, cfg, logs)
			}
			if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
				t.Fatalf("the retry: %v", err)
			}
			for _, ev := range []*alerting.Event{actionResult(), resolvedBy()} {
				if err := n.Deliver(t.Context(), ev, st); err != nil {
					t.Fatalf("%s: %v", ev.Name, err)
				}
			}
			roots := srv.Roots()[before:]
			if len(roots) != tc.wantRoots {
				t.Errorf("the incident has %d root messages; want %d", len(roots), tc.wantRoots)
			}
			if !strings.Contains(st[key+"/root_lookup"], tc.wantLookup) {
				t.Errorf("the State says of the lookup %q; want it to say %q", st[key+"/root_lookup"], tc.wantLookup)
			}
			thread := roots[len(roots)-1].TS
			if st["ts"] != thread {
				t.Errorf("the State's thread is %s; want %s", st["ts"], thread)
			}
			if replies := srv.Replies(thread); len(replies) != 2 {
				t.Errorf("%d replies in the thread; want the action result and the resolution", len(replies))
			}
			if files := srv.Files(); len(files) == 0 || files[len(files)-1].ThreadTS != thread {
				t.Errorf("the screenshot is not in the thread %s: %+v", thread, files)
			}
			var meta struct {
				EventType    string            `json:"event_type"`
				EventPayload map[string]string `json:"event_payload"`
			}
			if err := json.Unmarshal(roots[0].Metadata, &meta); err != nil || meta.EventType != "vigil_notification" ||
				meta.EventPayload["idempotency_key"] != key || meta.EventPayload["notifier"] != "ops" {
				t.Errorf("the root's metadata %s: want event_type vigil_notification with its idempotency key and notifier", roots[0].Metadata)
			}
			if tc.wantLookup != "adopted" && !strings.Contains(logs.String(), "posted again") {
				t.Errorf("the log does not say the root was posted again:\n%s", logs.String())
			}
		})
	}
}

// A root that Slack refused with an answer was not posted: its retry reads no history.
func TestSlackRootRefusedIsNotLookedFor(t *testing.T) {
	t.Parallel()
	srv := loopback.NewSlack(t)
	cfg := slackConfig(srv.APIURL())
	cfg.Channel = srv.Channel("deploys")
	n := newNotifier(t, cfg, nil)
	srv.Fail("chat.postMessage", loopback.Fault{SlackError: "internal_error"})
	st := alerting.State{}
	if err := n.Deliver(t.Context(), deployFailed(), st); err == nil {
		t.Fatal("Slack's internal_error was taken for a post")
	}
	if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
		t.Fatal(err)
	}
	if c := srv.CallsTo("conversations.history"); len(c) != 0 || len(srv.Roots()) != 1 {
		t.Errorf("%d history reads, %d roots; want none and one", len(c), len(srv.Roots()))
	}
}

func roundTrip(t *testing.T, st alerting.State) alerting.State {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	out := alerting.State{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
