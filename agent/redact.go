package agent

import (
	"bytes"
	"context"
	"iter"
	"log/slog"
	"net/http"
	"strings"

	"github.com/vigil-monitor/vigil/configs"
)

// Results are redacted when they leave their run (checks.Check.Run). The agent redacts once
// more at its own boundaries, with the redactor of the config in force, so a secret cannot
// leave through a path that does not carry a result: the log (redactHandler), everything
// the HTTP server answers (redactOutput), and the events written to the outbox (entries).

// redactor is the redactor of the config in force (nil before the first one is built:
// masking by place still applies).
func (a *Agent) redactor() *configs.Redactor {
	if rt := a.rt.Load(); rt != nil {
		return rt.Redactor
	}
	return nil
}

// redactHandler redacts every log record's message and string attributes.
type redactHandler struct {
	next slog.Handler
	red  func() *configs.Redactor
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	red := h.red()
	out := slog.NewRecord(rec.Time, rec.Level, red.String(rec.Message), rec.PC)
	rec.Attrs(func(at slog.Attr) bool {
		out.AddAttrs(redactAttr(red, at))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := h.red()
	list := make([]slog.Attr, len(attrs))
	for i, at := range attrs {
		list[i] = redactAttr(red, at)
	}
	return &redactHandler{next: h.next.WithAttrs(list), red: h.red}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{next: h.next.WithGroup(name), red: h.red}
}

func redactAttr(red *configs.Redactor, at slog.Attr) slog.Attr {
	v := at.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if configs.SensitiveName(at.Key) && v.String() != "" {
			return slog.String(at.Key, configs.Masked)
		}
		return slog.String(at.Key, red.String(v.String()))
	case slog.KindGroup:
		group := v.Group()
		list := make([]any, len(group))
		for i, g := range group {
			list[i] = redactAttr(red, g)
		}
		return slog.Group(at.Key, list...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(at.Key, red.String(x.Error()))
		case []string:
			return slog.Any(at.Key, red.Value(x))
		case interface{ String() string }:
			return slog.String(at.Key, red.String(x.String()))
		}
	}
	return slog.Attr{Key: at.Key, Value: v}
}

// redactOutput redacts what the API and the status page answer, once the handler has
// written it: stored evidence from before a secret was added to the config, or any future
// field that quotes a target, is masked like a fresh result.
func (a *Agent) redactOutput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			next.ServeHTTP(w, r)
			return
		}
		buf := &bufferedWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(buf, r)
		if buf.parts != nil { // a page in parts (status_parts.go): each redacted as it comes
			red, ans := a.redactor(), answer{w: w, r: r, status: buf.status}
			for part := range buf.parts {
				if r.Context().Err() != nil {
					break // the reader has gone: the rest of the rows are not made
				}
				ans.write(red.Bytes(part))
			}
			ans.close()
			return
		}
		body := buf.body.Bytes()
		if buf.whole != nil {
			body = buf.whole
		}
		if ct := w.Header().Get("Content-Type"); ct == "" || strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") {
			body = a.redactor().Bytes(body)
		}
		writeAnswer(w, r, buf.status, body) // compress.go
	})
}

// bufferedWriter holds an answer until the handler is done.
type bufferedWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	whole  []byte // an answer handed over whole (handOver)
	parts  iter.Seq[[]byte]
}

// handOver takes b as the whole answer, not a copy: b is the caller's no more. A page of
// megabytes written instead grew the buffer by doubling, three times its size allocated.
// It reports false, and takes nothing, once something was written.
func (b *bufferedWriter) handOver(p []byte) bool {
	if b.body.Len() > 0 || b.whole != nil || b.parts != nil {
		return false
	}
	b.whole = p
	return true
}

// handOverParts takes an answer written in parts, each valid until the next: an HTML page,
// redacted part by part (the page's parts end between pieces of its own markup). It
// reports false, and takes nothing, once something was written.
func (b *bufferedWriter) handOverParts(parts iter.Seq[[]byte]) bool {
	if b.body.Len() > 0 || b.whole != nil || b.parts != nil {
		return false
	}
	b.parts = parts
	return true
}

func (b *bufferedWriter) WriteHeader(status int) { b.status = status }
func (b *bufferedWriter) Write(p []byte) (int, error) {
	return b.body.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (write deadlines).
func (b *bufferedWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }
