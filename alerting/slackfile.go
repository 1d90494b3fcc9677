package alerting

// The failure screenshots, uploaded into the incident's thread with Slack's files v2 flow:
// files.getUploadURLExternal (a file id and where to send the bytes), the upload, and
// files.completeUploadExternal, which shares the file: a message in the thread that lists
// it (conversations.replies shows it with its id, name and title). Like chat.postMessage,
// files.completeUploadExternal has no idempotency key: when it went out whole and no answer
// came (the connection died after Slack shared the file, the attempt timed out while Slack
// was sharing it), or the agent was killed while uploading (Event.Interrupted), the file may
// be in the thread already, and uploading it again shows the screenshot twice. So each
// screenshot's file name carries a tag of its delivery (the notifier, the event's
// idempotency key and the check's place in the event), and before such a screenshot is
// uploaded again it is looked for in the thread by that name and adopted.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/slack-go/slack"
)

// Slack State keys after a screenshot's step key (<event key>/file/<i>): the unix second of
// its first upload whose files.completeUploadExternal went out whole and got no answer, and
// what the lookup before uploading it again found.
const (
	slackFileSent   = "/unanswered"
	slackFileLookup = "/lookup"
)

// screenshotTries is how many attempts a message's screenshot upload gets before it is
// given up.
const screenshotTries = 3

// screenshotName is the file name of the screenshot of the event's i-th failing check,
// check: the check's name, then a tag no other delivery's screenshot has, by which a retry
// knows the file in the thread.
func screenshotName(notifier, key string, i int, check string) string {
	sum := sha256.Sum256([]byte(notifier + "\x00" + key + "\x00" + strconv.Itoa(i)))
	return fileName(check) + "-screenshot-" + hex.EncodeToString(sum[:6]) + ".png"
}

// screenshots uploads the event's failure screenshots into the thread, each once: a step
// done is recorded in st; one an earlier attempt may have shared is looked for first.
func (s *Slack) screenshots(ctx context.Context, api *slack.Client, rec *recorder, ev *Event, key string, st State, now time.Time) error {
	for i, fc := range ev.FailedChecks {
		done := key + "/file/" + strconv.Itoa(i)
		if len(fc.Screenshot) == 0 || st[done] != "" {
			continue
		}
		name := screenshotName(s.name, key, i, fc.Name)
		if mayBePosted(ev, st, done+slackFileSent) {
			if id := s.findFile(ctx, api, rec, ev, key, done, name, st, now); id != "" {
				delete(st, done+slackFileSent)
				st[done] = id
				continue
			}
		}
		id, completing, err := s.upload(ctx, api, st, slack.UploadFileParameters{
			Reader:   bytes.NewReader(fc.Screenshot),
			FileSize: len(fc.Screenshot),
			Filename: name,
			Title:    fc.Name + ": screenshot at the failure",
			AltTxt:   "Screenshot of " + fc.Name + " when it failed",
		})
		if err != nil {
			if completing {
				unanswered(st, done+slackFileSent, rec, err, now)
			}
			// The page is posted; its screenshot is evidence, not the page. A failing upload is
			// tried with the entry's next two attempts, then given up (logged), so the entry
			// is delivered, not dead, and the incident's recovery is not held behind it.
			cerr := s.classify(ctx, err, rec, "files upload (getUploadURLExternal, upload, completeUploadExternal)", now)
			tries, _ := strconv.Atoi(st[done+"/tries"])
			if tries++; tries < screenshotTries && !Permanent(cerr) {
				st[done+"/tries"] = strconv.Itoa(tries)
				return cerr
			}
			s.log.WarnContext(ctx, "slack: screenshot not posted; the message is", "check", fc.Name, "incident", ev.Incident, "tries", tries, "error", cerr)
			st[done] = "given up"
			continue
		}
		delete(st, done+slackFileSent)
		st[done] = id
	}
	return nil
}

// upload runs the three steps of the files v2 flow for one file, shared into the thread,
// and returns the file's id; completing says the error is files.completeUploadExternal's
// (the step that shares the file).
func (s *Slack) upload(ctx context.Context, api *slack.Client, st State, p slack.UploadFileParameters) (id string, completing bool, err error) {
	u, err := api.GetUploadURLExternalContext(ctx, slack.GetUploadURLExternalParameters{FileName: p.Filename, FileSize: p.FileSize, AltTxt: p.AltTxt})
	if err != nil {
		return "", false, err
	}
	if err := api.UploadToURL(ctx, slack.UploadToURLParameters{UploadURL: u.UploadURL, Reader: p.Reader, Filename: p.Filename}); err != nil {
		return "", false, err
	}
	c, err := api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{
		Files: []slack.FileSummary{{ID: u.FileID, Title: p.Title}}, Channel: st[slackChannel], ThreadTimestamp: st[slackTS]})
	if err != nil {
		return "", true, err
	}
	for _, f := range c.Files {
		if f.ID != "" {
			return f.ID, false, nil
		}
	}
	return u.FileID, false, nil
}

// findFile looks in the incident's thread (conversations.replies) for the file named name
// that an earlier attempt may have shared, and returns its id; "" when it is not there or
// the thread could not be read (st[done+slackFileLookup] says which).
func (s *Slack) findFile(ctx context.Context, api *slack.Client, rec *recorder, ev *Event, key, done, name string, st State, now time.Time) string {
	thread := st[slackTS]
	return s.find(ctx, rec, ev, key, st, now, lost{what: "screenshot", op: "conversations.replies", sent: done + slackFileSent,
		lookup: done + slackFileLookup, found: "file",
		read: func(ctx context.Context, cursor, oldest string) ([]slack.Message, string, error) {
			ms, more, next, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: st[slackChannel],
				Timestamp: thread, Limit: historyPage, Oldest: oldest, Cursor: cursor})
			if !more {
				next = ""
			}
			return ms, next, err
		},
		match: func(m slack.Message) string {
			if m.Timestamp == thread || m.ThreadTimestamp != thread {
				return ""
			}
			for _, f := range m.Files {
				if f.Name == name && f.ID != "" {
					return f.ID
				}
			}
			return ""
		}})
}
