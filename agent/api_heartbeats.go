package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// maxBeatBody bounds a beat's body: a version, a status and a line of message.
const maxBeatBody = 16 << 10

// beatBody is what a job may post with a beat; an empty body is a plain "I ran".
type beatBody struct {
	Version string `json:"version"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// postHeartbeat records a beat for a heartbeat check. It takes the check's own token (a
// job that may beat may do nothing else), compared in constant time; an unknown check and
// a wrong token get the same answer, so the endpoint does not tell which names exist.
func (a *Agent) postHeartbeat(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	want := ""
	if c := a.Runtime().Checks[name]; c != nil && c.Kind == configs.KindHeartbeat {
		want = c.Config.Spec.(*configs.HeartbeatSpec).Token.Value()
	}
	got, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil heartbeats"`)
		writeError(w, http.StatusUnauthorized, "missing credentials: send Authorization: Bearer <the heartbeat check's token>")
		return
	}
	// Hashes have equal lengths, so the comparison's time does not depend on the token's.
	g, t := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	if want == "" || subtle.ConstantTimeCompare(g[:], t[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil heartbeats", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "no heartbeat check of that name takes this token: check the URL's name and the check's token%s",
			a.beatNameHint(name, g))
		return
	}
	var body beatBody
	if r.ContentLength != 0 {
		r.Body = http.MaxBytesReader(w, r.Body, maxBeatBody)
		if err := decodeJSON(r.Body, &body); err != nil {
			status := http.StatusBadRequest
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) { // decodeJSON's message gives the API's limit, not a beat's
				status, err = http.StatusRequestEntityTooLarge, fmt.Errorf("body is larger than %d bytes", maxBeatBody)
			}
			writeError(w, status, "%v (a beat's body is optional: {\"version\": \"v2\", \"status\": \"ok\" or \"fail\", \"message\": \"...\"})", err)
			return
		}
	}
	if msg := body.problem(); msg != "" {
		writeError(w, http.StatusBadRequest, "%s", msg)
		return
	}
	b, err := a.opts.Deps.Heartbeats.Record(r.Context(), name, checks.Beat{Version: body.Version, Status: body.Status, Message: body.Message})
	if err != nil {
		a.log.Error("storing a heartbeat failed; the job was told to post it again", "check", name, "error", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the beat could not be stored (%v): post it again", err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"check": name, "received_at": b.At, "status": b.Status})
}

// beatNameHint is, for a beat whose token (hashed: g) is another heartbeat check's, the
// name it is for: `did you mean "nightly"?`. The name is told only to a caller who holds
// that check's token, which may beat for it anyway; any other caller learns no name.
func (a *Agent) beatNameHint(name string, g [sha256.Size]byte) string {
	var owners []string
	for _, c := range a.Runtime().Order {
		if c.Kind != configs.KindHeartbeat || c.Name == name {
			continue
		}
		t := sha256.Sum256([]byte(c.Config.Spec.(*configs.HeartbeatSpec).Token.Value()))
		if subtle.ConstantTimeCompare(g[:], t[:]) == 1 {
			owners = append(owners, c.Name)
		}
	}
	if len(owners) == 0 {
		return ""
	}
	best := configs.Nearest(name, owners)
	if best == "" {
		best = owners[0]
	}
	return fmt.Sprintf("; did you mean %q? (this token is that heartbeat check's)", best)
}

// storedBeats keeps beats in the agent's store (checks.BeatStore): every agent sharing it
// reads them, and a restart loses none.
type storedBeats struct {
	st    beatStore
	agent string
}

// SaveBeat implements checks.BeatStore.
func (s storedBeats) SaveBeat(ctx context.Context, check string, b checks.Beat) error {
	return s.st.SaveBeat(ctx, check, &store.Beat{At: b.At, Version: b.Version, Status: b.Status, Message: b.Message, Agent: s.agent})
}

// Beats implements checks.BeatStore.
func (s storedBeats) Beats(ctx context.Context, check string, since time.Time) ([]checks.Beat, *checks.Beat, error) {
	recent, last, err := s.st.Beats(ctx, check, since)
	if err != nil || last == nil {
		return nil, nil, err
	}
	beat := func(b *store.Beat) checks.Beat {
		return checks.Beat{At: b.At, Version: b.Version, Status: b.Status, Message: b.Message}
	}
	out := make([]checks.Beat, len(recent))
	for i, b := range recent {
		out[i] = beat(b)
	}
	l := beat(last)
	return out, &l, nil
}

// Taken implements checks.BeatStore: when the store's agents whose configs have the check,
// any of them, have taken its beats without a break (each heartbeat extends it).
func (s storedBeats) Taken(ctx context.Context, check string, now time.Time) (checks.Taking, error) {
	tk, err := s.st.BeatsTaken(ctx, check, now)
	out := checks.Taking{Since: tk.Since}
	for _, b := range tk.Before {
		out.Before = append(out.Before, checks.Span{From: b.From, Until: b.Until})
	}
	return out, err
}

// problem says what is wrong with a beat's fields, "" when nothing.
func (b *beatBody) problem() string {
	switch {
	case b.Status != "" && b.Status != "ok" && b.Status != "fail":
		return `status must be "ok" or "fail"`
	case len(b.Version) > 128 || !printable(b.Version):
		return "version must be at most 128 printable characters"
	case len(b.Message) > 1024 || !printable(b.Message):
		return "message must be at most 1024 printable characters, on one line"
	}
	return ""
}

func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == unicode.ReplacementChar })
}

// bearer returns the request's bearer token.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}
