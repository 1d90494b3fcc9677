package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// writeAnswer compresses text a client accepts gzip for, and only that: what is small,
// already encoded, an image, an octet stream, untyped, or bodiless goes as it is. An
// answer written in parts (the overview) is sent as the same answer written whole, parts
// of a few bytes and of none included.
func TestWriteAnswerCompressesTextOnly(t *testing.T) {
	big := []byte(strings.Repeat("<tr><td>check-0001</td><td>99.9%</td></tr>\n", 200))
	for _, c := range []struct {
		name, ct, encoding, accept string
		status                     int
		body                       []byte
		gzipped, varies            bool
	}{
		{"html", "text/html; charset=utf-8", "", "gzip, deflate, br, zstd", 200, big, true, true},
		{"json", "application/json; charset=utf-8", "", "gzip", 200, big, true, true},
		{"an error page is compressed too", "text/plain; charset=utf-8", "", "gzip", 404, big, true, true},
		{"svg", "image/svg+xml; charset=utf-8", "", "gzip", 200, big, true, true},
		{"any encoding: identity on the tie", "text/html", "", "*", 200, big, false, true},
		{"upper case type", "Text/HTML", "", "gzip", 200, big, true, true},
		{"no gzip asked", "text/html", "", "", 200, big, false, true},
		{"gzip refused", "text/html", "", "gzip;q=0, identity", 200, big, false, true},
		{"identity preferred", "text/html", "", "gzip;q=0.5, identity", 200, big, false, true},
		{"small", "application/json", "", "gzip", 200, big[:minCompressed-1], false, true},
		{"png", "image/png", "", "gzip", 200, big, false, false},
		{"octet stream", "application/octet-stream", "", "gzip", 200, big, false, false},
		{"no type", "", "", "gzip", 200, big, false, false},
		{"encoded already", "text/plain", "br", "gzip", 200, big, false, false},
		{"not modified", "text/html", "", "gzip", 304, nil, false, true},
		{"no content", "application/json", "", "gzip", 204, nil, false, true},
		{"hostile header", "text/html", "", "gzip;q=2;;,,\x00\xff, *;q=", 200, big, false, true},
	} {
		for _, parts := range []int{1, 3, 700} {
			t.Run(fmt.Sprintf("%s in %d parts", c.name, parts), func(t *testing.T) {
				rec := httptest.NewRecorder()
				if c.ct != "" {
					rec.Header().Set("Content-Type", c.ct)
				}
				if c.encoding != "" {
					rec.Header().Set("Content-Encoding", c.encoding)
				}
				rec.Header().Set("Content-Length", "12") // a handler's, for the body before redaction
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				if c.accept != "" {
					req.Header.Set("Accept-Encoding", c.accept)
				}
				if parts == 1 {
					writeAnswer(rec, req, c.status, c.body)
				} else {
					ans := answer{w: rec, r: req, status: c.status}
					for i := range parts {
						ans.write(c.body[len(c.body)*i/parts : len(c.body)*(i+1)/parts])
					}
					ans.close()
				}
				if rec.Code != c.status {
					t.Errorf("status %d; want %d", rec.Code, c.status)
				}
				if rec.Header().Get("Content-Length") != "" {
					t.Errorf("Content-Length %q kept", rec.Header().Get("Content-Length"))
				}
				if got := slicesContain(rec.Header().Values("Vary"), "Accept-Encoding"); got != c.varies {
					t.Errorf("Vary: %q; want Accept-Encoding in it: %v", rec.Header().Values("Vary"), c.varies)
				}
				gzipped := rec.Header().Get("Content-Encoding") == "gzip"
				if gzipped != c.gzipped {
					t.Fatalf("Content-Encoding %q; gzipped want %v", rec.Header().Get("Content-Encoding"), c.gzipped)
				}
				body := rec.Body.Bytes()
				if gzipped {
					if len(body) >= len(c.body)/4 {
						t.Errorf("%d bytes compressed to %d", len(c.body), len(body))
					}
					body = gunzip(t, body)
				}
				if !bytes.Equal(body, c.body) {
					t.Errorf("the body reads back as %d bytes; want the %d written", len(body), len(c.body))
				}
			})
		}
	}
}

// Through a real agent: the status page, a run's page and the API answer gzip to a client
// that asks for it (Go's own client, as `vigil` is, reads it back unasked), and what is
// compressed is the redacted answer: a run stored with a secret the config now holds
// reads back masked, compressed or not.
func TestAnswersAreGzippedAfterRedaction(t *testing.T) {
	var cfg strings.Builder
	cfg.WriteString("checks:\n")
	for i := range 30 {
		fmt.Fprintf(&cfg, "  - {name: check-%02d, kind: http, every: 1h, request: {url: \"http://127.0.0.1:9/health\", headers: {Authorization: \"Bearer planted-token-%02d-xyz\"}}}\n", i, i)
	}
	h := startAgent(t, "", cfg.String())
	run := &store.RunRecord{Check: "check-00", Kind: "http", Started: time.Now(), Duration: time.Millisecond, Outcome: "fail", Attempts: 1,
		Reasons: []string{"the answer quoted planted-token-00-xyz back"}, Transcript: []string{"> GET /health", "> Authorization: Bearer planted-token-00-xyz", "< 401"}}
	if err := h.a.store.SaveRuns(context.Background(), []*store.RunRecord{run}); err != nil {
		t.Fatal(err)
	}
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer raw.CloseIdleConnections()
	for _, path := range []string{"/", "/api/v1/checks", fmt.Sprintf("/runs/%d", run.ID)} {
		get := func(accept string) (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
			if accept != "" {
				req.Header.Set("Accept-Encoding", accept)
			}
			resp, err := raw.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return resp, b
		}
		plain, plainBody := get("")
		zipped, zippedBody := get("gzip, deflate, br, zstd")
		if plain.StatusCode != 200 || zipped.StatusCode != 200 {
			t.Fatalf("%s: status %d and %d", path, plain.StatusCode, zipped.StatusCode)
		}
		if plain.Header.Get("Content-Encoding") != "" || zipped.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("%s: Content-Encoding %q unasked, %q asked", path, plain.Header.Get("Content-Encoding"), zipped.Header.Get("Content-Encoding"))
		}
		if zipped.ContentLength != -1 && zipped.ContentLength != int64(len(zippedBody)) {
			t.Errorf("%s: Content-Length %d for %d bytes", path, zipped.ContentLength, len(zippedBody))
		}
		unzipped := gunzip(t, zippedBody)
		if !bytes.Contains(unzipped, []byte("check-00")) || len(zippedBody) >= len(plainBody)/2 {
			t.Errorf("%s: %d bytes, %d gzipped, reading back as %d", path, len(plainBody), len(zippedBody), len(unzipped))
		}
		if path == "/api/v1/checks" && !bytes.Equal(unzipped, plainBody) {
			t.Errorf("%s reads back as something else through gzip", path)
		}
		for name, b := range map[string][]byte{"identity": plainBody, "gzip": unzipped} {
			if bytes.Contains(b, []byte("planted-token")) {
				t.Errorf("%s (%s) holds a secret", path, name)
			}
			if strings.HasPrefix(path, "/runs/") && bytes.Count(b, []byte(configs.Masked)) < 2 {
				t.Errorf("%s (%s): the run's reason and transcript are not masked:\n%s", path, name, b)
			}
		}

		// HEAD of a page says what GET would send, and sends no body (the API answers
		// HEAD with its JSON 405).
		if !strings.HasPrefix(path, "/api/") {
			req, _ := http.NewRequest(http.MethodHead, h.url+path, nil)
			req.Header.Set("Accept-Encoding", "gzip")
			head, err := raw.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, head.Body)
			head.Body.Close()
			if head.StatusCode != 200 || head.Header.Get("Content-Encoding") != "gzip" || n != 0 {
				t.Errorf("HEAD %s: status %d, Content-Encoding %q, %d bytes of body", path, head.StatusCode, head.Header.Get("Content-Encoding"), n)
			}
		}

		// Go's client asks for gzip itself and hands back the text.
		resp, err := http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !resp.Uncompressed || !bytes.Contains(b, []byte("check-00")) {
			t.Errorf("%s through Go's default client: uncompressed by it %v, %d bytes", path, resp.Uncompressed, len(b))
		}
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("a broken gzip stream: %v", err)
	}
	return out
}

func slicesContain(values []string, want string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), want) {
				return true
			}
		}
	}
	return false
}
