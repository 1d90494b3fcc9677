package configs

import (
	"runtime"
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
		for range 5 {
			out = r.replace(page)
		}
		runtime.ReadMemStats(&after)
		if n := (after.TotalAlloc - before.TotalAlloc) / 5; n > 1024 { // the writer, not the text
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
	if more == r || !more.known["a-new-one/learned"] || !more.known["k3y-with spaces&more"] {
		t.Fatalf("a new secret was not learned: %v", more.known)
	}
	all := NewRedactor("Bearer s3cr3t-token/with+chars=", "k3y-with spaces&more", "a-new-one/learned")
	text := `GET /?q=a-new-one%2Flearned {"k":"k3y-with spaces&amp;more"} s3cr3t-token/with+chars= a-new-one/learned`
	if got, want := more.String(text), all.String(text); got != want || strings.Contains(got, "learned") {
		t.Errorf("learned one at a time: %q; all at once: %q", got, want)
	}
}

// FuzzWith: learning secrets one at a time masks as knowing them from the start.
func FuzzWith(f *testing.F) {
	f.Add("planted-secret", "other/secret+1", "x planted-secret other%2Fsecret%2B1")
	f.Add("aaaaaa", "aaaaaa", "aaaaaa")
	f.Fuzz(func(t *testing.T, a, b, text string) {
		step, once := NewRedactor(a).With(b).With(a), NewRedactor(a, b)
		if got, want := step.String(text), once.String(text); got != want {
			t.Fatalf("With one at a time: %q; at once: %q", got, want)
		}
	})
}
