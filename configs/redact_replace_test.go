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
