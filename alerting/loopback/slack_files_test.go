package loopback_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting/loopback"
)

// A file shared into a thread as Slack does it: after files.completeUploadExternal, and
// never before, conversations.replies lists the message that shares it, with the file's
// id, name and title; a Drop fault on the completion shares the file and loses the answer.
// Messages, Roots and Replies stay the chat.postMessage messages; Files has the share's ts.
func TestSlackServerListsASharedFileInItsThread(t *testing.T) {
	s := loopback.NewSlack(t)
	call := func(method string, args url.Values) (map[string]any, error) {
		args.Set("token", s.Token)
		resp, err := http.PostForm(s.APIURL()+method, args)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out map[string]any
		return out, json.NewDecoder(resp.Body).Decode(&out)
	}
	r, err := call("chat.postMessage", url.Values{"channel": {"#deploys"}, "text": {"root"}})
	if err != nil || r["ok"] != true {
		t.Fatalf("root: %v %v", r, err)
	}
	ch, root := r["channel"].(string), r["ts"].(string)
	thread := func() []map[string]any {
		r, err := call("conversations.replies", url.Values{"channel": {ch}, "ts": {root}})
		if err != nil || r["ok"] != true {
			t.Fatalf("conversations.replies: %v %v", r, err)
		}
		var out []map[string]any
		for _, m := range r["messages"].([]any) {
			out = append(out, m.(map[string]any))
		}
		return out
	}
	u, _ := call("files.getUploadURLExternal", url.Values{"filename": {"home-screenshot-0a1b.png"}, "length": {"4"}})
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "home-screenshot-0a1b.png")
	_, _ = fw.Write([]byte("\x89PNG"))
	_ = mw.Close()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, u["upload_url"].(string), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := len(thread()); n != 1 {
		t.Errorf("the thread lists %d messages before the upload is completed; want its parent alone", n)
	}
	s.Fail("files.completeUploadExternal", loopback.Fault{Drop: true})
	id := u["file_id"].(string)
	if r, err := call("files.completeUploadExternal", url.Values{"files": {fmt.Sprintf(`[{"id":%q,"title":"home: screenshot"}]`, id)},
		"channel_id": {ch}, "thread_ts": {root}}); err == nil {
		t.Fatalf("a dropped completion was answered: %v", r)
	}
	msgs := thread()
	if len(msgs) != 2 {
		t.Fatalf("the thread lists %d messages after the completion; want its parent and the share: %v", len(msgs), msgs)
	}
	share := msgs[1]
	files, _ := share["files"].([]any)
	if share["thread_ts"] != root || share["upload"] != true || len(files) != 1 {
		t.Fatalf("the share: %v; want a reply in the thread with the one file", share)
	}
	f := files[0].(map[string]any)
	if f["id"] != id || f["name"] != "home-screenshot-0a1b.png" || f["title"] != "home: screenshot" || f["mimetype"] != "image/png" {
		t.Errorf("the shared file: %v; want its id, name, title and type", f)
	}
	if got := s.Files(); len(got) != 1 || got[0].TS != share["ts"] || got[0].ThreadTS != root || !strings.HasPrefix(string(got[0].Data), "\x89PNG") {
		t.Errorf("Files: %+v; want the one file, its share's ts and bytes", got)
	}
	if len(s.Messages()) != 1 || len(s.Replies(root)) != 0 {
		t.Errorf("%d messages, %d replies; want the root alone (shares are in Files)", len(s.Messages()), len(s.Replies(root)))
	}
}
