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
// its thread; for a channel configured by name whose id no post told, the id is found among
// the bot's channels (users.conversations). Without the scope to read the history, or to
// find a name's id, the root is posted again, as before the lookup, and the State says why.
// (The retry posted a second root: the thread split, the follow-ups went to the second.)
func TestSlackRootWhoseAnswerWasLostIsNotPostedTwice(t *testing.T) {
	t.Parallel()
	const key = "d-42:deploy_failed"
	for _, tc := range []struct {
		name       string
		byName     bool // channel configured as "#deploys", not its id
		warm       bool // the notifier posted to the channel before (it learned the id)
		noScope    bool // the token lacks channels:history
		noRead     bool // the token lacks channels:read
		wantRoots  int
		wantLookup string
	}{
		{name: "channel id", wantRoots: 1, wantLookup: "adopted"},
		{name: "channel name, id learned from an earlier post", byName: true, warm: true, wantRoots: 1, wantLookup: "adopted"},
		{name: "token without channels:history", noScope: true, wantRoots: 2, wantLookup: "lacks the scope"},
		{name: "channel name, id found among the bot's channels", byName: true, wantRoots: 1, wantLookup: "adopted"},
		{name: "channel name, token without channels:read", byName: true, noRead: true, wantRoots: 2, wantLookup: "channels:read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := loopback.NewSlack(t)
			srv.NoHistoryScope, srv.NoReadScope = tc.noScope, tc.noRead
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

// A message posted whose attempt left no trace in the State: the agent was killed while
// Slack was posting it (the outbox tells the retry: Event.Interrupted), so the State is
// the one from before that attempt. The retry looks for it, a root in the channel, a reply
// in the thread, and adopts it. (The retry posted it again: a second root, or the action's
// result twice in the thread.)
func TestSlackMessageOfACutAttemptIsNotPostedTwice(t *testing.T) {
	t.Parallel()
	for _, reply := range []bool{false, true} {
		name := map[bool]string{false: "root", true: "thread reply"}[reply]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := loopback.NewSlack(t)
			cfg := slackConfig(srv.APIURL())
			cfg.Channel = srv.Channel("deploys")
			logs := &vigiltest.Buffer{}
			n := newNotifier(t, cfg, logs)
			st := alerting.State{}
			ev, key := deployFailed(), "d-42:deploy_failed"
			if reply {
				if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
					t.Fatal(err)
				}
				ev, key = actionResult(), "d-42:action_result:rollback-web"
			}
			saved := roundTrip(t, st) // what the store holds: the killed attempt saved nothing
			srv.Fail("chat.postMessage", loopback.Fault{Drop: true})
			_ = n.Deliver(t.Context(), ev, st)
			if len(srv.Messages()) != map[bool]int{false: 1, true: 2}[reply] {
				t.Fatalf("Slack has %d messages; want the cut attempt's posted", len(srv.Messages()))
			}
			n = newNotifier(t, cfg, logs) // the restarted agent's
			ev.Interrupted = true
			if err := n.Deliver(t.Context(), ev, saved); err != nil {
				t.Fatalf("the retry after the restart: %v", err)
			}
			if err := n.Deliver(t.Context(), resolvedBy(), saved); err != nil {
				t.Fatal(err)
			}
			roots := srv.Roots()
			if len(roots) != 1 {
				t.Fatalf("%d root messages; want 1", len(roots))
			}
			replies := srv.Replies(roots[0].TS)
			if want := map[bool]int{false: 1, true: 2}[reply]; len(replies) != want {
				t.Errorf("%d replies in the thread; want %d (the resolution, and the action's result once)", len(replies), want)
			}
			lookup := key + map[bool]string{false: "/root_lookup", true: "/reply_lookup"}[reply]
			if !strings.Contains(saved[lookup], "adopted") {
				t.Errorf("the State says of the lookup %q; want adopted", saved[lookup])
			}
			if saved["ts"] != roots[0].TS || (reply && saved[key+"/posted"] != replies[0].TS) {
				t.Errorf("the State's thread %s, reply %s; want the posted root %s and first reply", saved["ts"], saved[key+"/posted"], roots[0].TS)
			}
			if !strings.Contains(logs.String(), "adopting it") {
				t.Errorf("the log does not say the message was adopted:\n%s", logs.String())
			}
		})
	}
}

// A thread reply whose answer was lost (the action's result, posted by Slack, the answer
// dropped): the retry, by a notifier built anew on the saved State, finds it in the thread
// by its metadata (conversations.replies) and does not post it again; the follow-ups after
// it go on as usual. Without channels:history it is posted again and the State says why.
// (The retry posted the action's result a second time in the thread.)
func TestSlackReplyWhoseAnswerWasLostIsNotPostedTwice(t *testing.T) {
	t.Parallel()
	const key = "d-43:deploy_passed"
	for _, noScope := range []bool{false, true} {
		t.Run(map[bool]string{false: "found", true: "token without channels:history"}[noScope], func(t *testing.T) {
			t.Parallel()
			srv := loopback.NewSlack(t)
			srv.NoHistoryScope = noScope
			cfg := slackConfig(srv.APIURL()) // by name: the thread's channel id is in the State
			logs := &vigiltest.Buffer{}
			n := newNotifier(t, cfg, logs)
			st := alerting.State{}
			if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
				t.Fatal(err)
			}
			srv.Fail("chat.postMessage", loopback.Fault{Drop: true})
			if err := n.Deliver(t.Context(), resolvedBy(), st); err == nil || alerting.Permanent(err) {
				t.Fatalf("the attempt whose answer was lost: %v; want a retryable error", err)
			}
			st = roundTrip(t, st)
			n = newNotifier(t, cfg, logs)
			if err := n.Deliver(t.Context(), resolvedBy(), st); err != nil {
				t.Fatalf("the retry: %v", err)
			}
			roots := srv.Roots()
			replies := srv.Replies(roots[0].TS)
			want, lookup := 1, "adopted"
			if noScope {
				want, lookup = 2, "lacks the scope"
			}
			if len(roots) != 1 || len(replies) != want {
				t.Errorf("%d roots, %d replies in the thread; want 1 and %d", len(roots), len(replies), want)
			}
			if !strings.Contains(st[key+"/reply_lookup"], lookup) {
				t.Errorf("the State says of the lookup %q; want it to say %q", st[key+"/reply_lookup"], lookup)
			}
			if last := replies[len(replies)-1].TS; st[key+"/posted"] != last || st[key+"/reply_unanswered"] != "" {
				t.Errorf("the State: reply %q, unanswered mark %q; want %s and no mark", st[key+"/posted"], st[key+"/reply_unanswered"], last)
			}
			if roots[0].Updates == 0 {
				t.Error("the root was not updated after the reply")
			}
			var meta struct {
				EventType    string            `json:"event_type"`
				EventPayload map[string]string `json:"event_payload"`
			}
			if err := json.Unmarshal(replies[0].Metadata, &meta); err != nil || meta.EventPayload["idempotency_key"] != key {
				t.Errorf("the reply's metadata %s: want its idempotency key", replies[0].Metadata)
			}
		})
	}
}
