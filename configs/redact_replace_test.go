package configs

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// A text with no secret in it comes back as it is, not copied, however many secrets the
// redactor knows; one with secrets is replaced as the Replacer replaces it.
func TestReplaceKeepsTextWithoutSecrets(t *testing.T) {
	for _, secrets := range [][]string{{"hunter22"}, {"hunter22", "s3cr3t&<token>", `pass"word99`}} {
		r := NewRedactor(secrets...)
		page := strings.Repeat(`<tr class="check"><td>checkout-api</td><td>200 OK in 31 ms</td></tr>`+"\n", 2000)
		var out string
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const rounds = 20
		for range rounds {
			out = r.replace(page)
		}
		runtime.ReadMemStats(&after)
		// TotalAlloc is the process's: a test running in parallel, the runtime's own work
		// add a few KiB now and then. A copy of the text would be its size every round.
		if n := (after.TotalAlloc - before.TotalAlloc) / rounds; n > uint64(len(page))/32 {
			t.Errorf("%d secrets: %d bytes allocated for a text of %d with none of them", r.Len(), n, len(page))
		}
		if unsafe.StringData(out) != unsafe.StringData(page) {
			t.Errorf("%d secrets: the text was copied", r.Len())
		}
		for _, text := range []string{"hunter22", "a hunter22 b", "hunter22hunter22 s3cr3t&amp;&lt;token&gt;", "x" + secrets[len(secrets)-1]} {
			if got, want := r.replace(text), r.rep.Replace(text); got != want {
				t.Errorf("%d secrets: replace(%q) = %q; the Replacer gives %q", r.Len(), text, got, want)
			}
		}
	}
}

// FuzzReplace: any text, two secrets. replace gives what the Replacer gives.
func FuzzReplace(f *testing.F) {
	f.Add("a hunter22 b", "hunter22", "token&<1>")
	f.Add("token&amp;&lt;1&gt;", "hunter22", "token&<1>")
	f.Add("", "aaaaaa", "aaaaab")
	f.Fuzz(func(t *testing.T, text, s1, s2 string) {
		r := NewRedactor(s1, s2)
		if r.rep == nil {
			return
		}
		if got, want := r.replace(text), r.rep.Replace(text); got != want {
			t.Fatalf("replace(%q) = %q; the Replacer gives %q", text, got, want)
		}
	})
}

// With hands back the redactor itself, allocating nothing, when it knows every secret
// already (a run's credentials are mostly the config's); a new secret makes a new one that
// masks as a redactor made with all of them at once.
func TestWithKnownSecrets(t *testing.T) {
	r := NewRedactor("Bearer s3cr3t-token/with+chars=", "k3y-with spaces&more")
	if n := testing.AllocsPerRun(100, func() {
		if r.With("Bearer s3cr3t-token/with+chars=", "k3y-with spaces&more", "short") != r {
			t.Fatal("a redactor knowing every secret was not handed back")
		}
	}); n != 0 {
		t.Errorf("%v allocations to learn what was known", n)
	}
	more := r.With("k3y-with spaces&more", "a-new-one/learned")
	if more == r || !more.knows("a-new-one/learned") || !more.knows("k3y-with spaces&more") {
		t.Fatalf("a new secret was not learned: %v", more.known)
	}
	all := NewRedactor("Bearer s3cr3t-token/with+chars=", "k3y-with spaces&more", "a-new-one/learned")
	text := `GET /?q=a-new-one%2Flearned {"k":"k3y-with spaces&amp;more"} s3cr3t-token/with+chars= a-new-one/learned`
	if got, want := more.String(text), all.String(text); got != want || strings.Contains(got, "learned") {
		t.Errorf("learned one at a time: %q; all at once: %q", got, want)
	}
}

// FuzzWith: learning secrets one at a time masks as knowing them from the start, in text,
// in an excerpt and in binary data: a run's redactor (the config's with what it learned
// held apart) and a redactor made whole.
func FuzzWith(f *testing.F) {
	f.Add("planted-secret", "other/secret+1", "third&one", "x planted-secret other%2Fsecret%2B1")
	f.Add("aaaaaa", "aaaaaa", "aaaaaaa", "aaaaaa")
	f.Add("abcdefgh", "zzabcdefghzz", "cdefghij", "zzabcdefghzz abcdefghij")
	f.Add("zzabcdefghzz", "abcdefgh", "ghijklmn", "zzabcdefghzz abcdefghijklmn\x00")
	f.Fuzz(func(t *testing.T, a, b, c, text string) {
		step, once := NewRedactor(a).With(b).With(c).With(a), NewRedactor(a, b, c)
		if got, want := step.String(text), once.String(text); got != want {
			t.Fatalf("With one at a time: %q; at once: %q", got, want)
		}
		if got, want := step.Excerpt(text, 10), once.Excerpt(text, 10); got != want {
			t.Fatalf("Excerpt, one at a time: %q; at once: %q", got, want)
		}
		bin := append([]byte(text), 0)
		if got, want := step.Bytes(slices.Clone(bin)), once.Bytes(slices.Clone(bin)); !bytes.Equal(got, want) {
			t.Fatalf("Bytes, one at a time: %q; at once: %q", got, want)
		}
		if step.Len() != once.Len() {
			t.Fatalf("one at a time %d forms, at once %d", step.Len(), once.Len())
		}
	})
}

// A run's redactor holds what it learned apart from the config's: learning a secret costs
// the same however many the config has (it made and searched every form of them all
// again: 237 KB for a config of three hundred), and masks as a redactor of them all.
func TestWithLearnsApartFromTheConfig(t *testing.T) {
	bytesToLearn := func(config *Redactor) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range 20 {
			_ = config.With(fmt.Sprintf("session=%08d-learned", i))
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / 20
	}
	secrets := make([]string, 300)
	for i := range secrets {
		secrets[i] = fmt.Sprintf("tok_%04d_aZ9x/Kq+Lm=Pw", i)
	}
	small, large := NewRedactor(secrets[:2]...), NewRedactor(secrets...)
	if s, l := bytesToLearn(small), bytesToLearn(large); l > 2*s+1024 {
		t.Errorf("learning a secret allocated %d bytes with 2 config secrets, %d with 300", s, l)
	}
	run := large.With("session=4711-learned")
	if run.base != large || run.rep != nil {
		t.Fatalf("the run's redactor was made whole: %d forms of its own", len(run.secrets))
	}
	all := NewRedactor(append(slices.Clone(secrets), "session=4711-learned")...)
	for _, text := range []string{
		"< Set-Cookie: id=session=4711-learned; Path=/ and tok_0007_aZ9x/Kq+Lm=Pw",
		"no secret of the run's here, only tok_0299_aZ9x%2FKq%2BLm%3DPw and tok_0001_aZ9x/Kq+Lm=Pw",
		"nothing secret at all",
	} {
		if got, want := run.String(text), all.String(text); got != want {
			t.Errorf("the run's redactor: %q; all at once: %q", got, want)
		}
	}
	if run.wholeR != nil {
		t.Error("the whole was made for texts where the run's secret stands apart from the config's")
	}
	// where a secret of the config's overlaps the run's, or comes within reach of it, the
	// whole decides which is masked
	near := large.With("Lm=Pw-and-more-learned", "session=4711-learned")
	all = NewRedactor(append(slices.Clone(secrets), "Lm=Pw-and-more-learned", "session=4711-learned")...)
	for _, text := range []string{
		"tok_0007_aZ9x/Kq+Lm=Pw-and-more-learned",       // overlapping: the config's starts first
		"x session=4711-learned tok_0003_aZ9x/Kq+Lm=Pw", // near: both masked
		"session=4711-learned" + strings.Repeat(".", 30) + "tok_0003_aZ9x/Kq+Lm=Pw and Lm=Pw-and-more-learned",
	} {
		if got, want := near.String(text), all.String(text); got != want {
			t.Errorf("the run's redactor: %q; all at once: %q", got, want)
		}
	}
	if near.wholeR == nil {
		t.Error("a text with the config's secret next to the run's was not masked by the whole")
	}
	// a run that learns more than it can search apart is made whole
	many := make([]string, maxOwnForms+1)
	for i := range many {
		many[i] = fmt.Sprintf("learned-%03d", i)
	}
	if got := large.With(many...); got.base != nil || got.Len() != large.Len()+len(many) {
		t.Errorf("learning %d secrets: base %v, %d forms", len(many), got.base != nil, got.Len())
	}
}

// BenchmarkRedactorLearns: a run learns a secret (a session cookie set on every answer) on
// top of a config of 10 and of 300 secrets, and masks a transcript with the cookie in it
// and a result's values without.
func BenchmarkRedactorLearns(b *testing.B) {
	for _, n := range []int{10, 300} {
		secrets := make([]string, n)
		for i := range secrets {
			secrets[i] = fmt.Sprintf("tok_%04d_aZ9x/Kq+Lm=Pw", i)
		}
		config := NewRedactor(secrets...)
		body := strings.Repeat(`{"id": 42, "name": "widget", "status": "ok"}`, 8)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				cookie := fmt.Sprintf("sess-%08d-rotating", i)
				run := config.With(cookie)
				_ = run.String(body)
				_ = run.String("< Set-Cookie: id=" + cookie + "; Path=/")
			}
		})
		b.Run(fmt.Sprint(n, "/nothing-learned"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				run := config.With(secrets[0])
				_ = run.String(body)
			}
		})
	}
}

// BenchmarkExcerptsOfARunsVars seals an HTTP run's variables as every scheduled run does:
// the keys are the same few each time, and the config's redactor remembers what it made of
// them (name).
func BenchmarkExcerptsOfARunsVars(b *testing.B) {
	r := NewRedactor("s3cr3t-token/with+chars=", "k3y-with spaces&more")
	vars := map[string]any{"status": 200, "headers": map[string]string{"Content-Type": "application/json", "Date": "Sun, 06 Dec 2026 16:23:39 GMT", "Content-Length": "16"},
		"url": "http://127.0.0.1:8080/", "proto": "HTTP/1.1", "dns_ms": 0.0, "connect_ms": 0.0, "tls_ms": 0.0, "ttfb_ms": 0.3, "duration_ms": 0.4,
		"body_bytes": 16, "body_truncated": false, "conn_reused": true, "content_length": 16, "redirects": 0, "cert_expiry_days": -1.0, "cert_expiry_timestamp": 0.0}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Excerpts(vars, 1024)
	}
}

// What the config's redactor remembers of a key is what it would make of it afresh: a
// sensitive name masks its value each time, a key holding a secret is shown masked each
// time, a run's redactor that learned a secret masks a key the config's remembered as
// clean, and keys past maxNames are judged as well as the first.
func TestNamesAreRememberedAsJudged(t *testing.T) {
	r := NewRedactor("tenant-8f3a9c", "s3cr3t-token")
	vars := func(k string) map[string]any {
		return map[string]any{"status": 200, "headers": map[string]string{"Set-Cookie": "sid=abc", "X-Tenant-tenant-8f3a9c": "v"}, k: "plain"}
	}
	want := map[string]any{"status": 200, "headers": map[string]string{"Set-Cookie": Masked, "X-Tenant-" + Masked: "v"}, "marker-4f9e21": "plain"}
	for i := range 3 {
		if got := r.Value(vars("marker-4f9e21")); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("walk %d: %v; want %v", i, got, want)
		}
	}
	run := r.With("marker-4f9e21")
	if got := run.Value(vars("marker-4f9e21")).(map[string]any); got[Masked] != "plain" {
		t.Errorf("a run that learned the key as a secret: %v; want the key masked", got)
	}
	for i := range maxNames + 100 {
		k := fmt.Sprintf("x-%d-password", i)
		if got := r.Value(map[string]string{k: "hunter2"}).(map[string]string); got[k] != Masked {
			t.Fatalf("key %d of a redactor past its remembered names: %v", i, got)
		}
	}
	if n := r.nameCount.Load(); n < maxNames {
		t.Errorf("%d names tried; want at least %d", n, maxNames)
	}
	count := 0
	r.names.Range(func(any, any) bool { count++; return true })
	if count > maxNames {
		t.Errorf("%d names remembered; want at most %d", count, maxNames)
	}
}
