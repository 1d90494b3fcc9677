package configs

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// Every key whose written 0 zeroRules refuses is refused in the corpus file that holds
// them all (whose exact messages TestBadConfigs pins), with its own fix: a rule of a
// struct the decoder never reaches by that key would refuse nothing.
func TestEveryRefusedZeroIsInTheCorpus(t *testing.T) {
	const file = "testdata/bad/written-zeros.yaml"
	_, err := Load(file, Options{Environ: []string{}})
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("%s: %v", file, err)
	}
	refusedKeys := 0
	for _, r := range zeroRules {
		if r.use == "" {
			continue
		}
		refusedKeys++
		found := false
		for _, e := range es {
			found = found || e.Fix == r.fix() && strings.HasSuffix(e.Path, "."+r.key)
		}
		if !found {
			t.Errorf("%s: %s writes it 0 and it is not refused with its fix", r.doc, file)
		}
	}
	if len(es) != refusedKeys {
		t.Errorf("%s: %d errors for %d refused keys:\n%v", file, len(es), refusedKeys, err)
	}
}

// docs/CONFIG.md's "A written 0" section names every key of zeroRules, with what its 0
// does when it is kept.
func TestZeroRulesAreDocumented(t *testing.T) {
	data, err := os.ReadFile("../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## A written 0\n")
	if !ok {
		t.Fatal(`docs/CONFIG.md has no "## A written 0" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, r := range zeroRules {
		if !strings.Contains(section, r.doc) {
			t.Errorf("docs/CONFIG.md, A written 0: %s is not there", r.doc)
		}
		if r.means != "" && !strings.Contains(section, r.means) {
			t.Errorf("docs/CONFIG.md, A written 0: %s's 0 is not said to mean %q", r.doc, r.means)
		}
	}
}
