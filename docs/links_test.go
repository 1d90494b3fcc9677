// Package docs holds what a user reads beyond the README. Its test checks that the README
// and every page here link only to what exists in the repository: users clone the
// repository alone, so a link that leaves it is a broken link.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// mdLink matches a Markdown link or image target: [text](target) or ![alt](target).
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// headingID is GitHub's anchor of a heading: lower case, spaces to dashes, punctuation out.
func headingID(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(text string) map[string]bool {
	out := map[string]bool{}
	inCode := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		out[headingID(strings.TrimLeft(line, "#"))] = true
	}
	return out
}

func TestLinksStayInTheRepository(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append([]string{filepath.Join(root, "README.md")}, pages...)
	checked := 0
	for _, page := range pages {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		text := string(raw)
		rel, _ := filepath.Rel(root, page)
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			file, frag, _ := strings.Cut(target, "#")
			dest := page
			if file != "" {
				dest = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
				inside, err := filepath.Rel(root, dest)
				if err != nil || inside == ".." || strings.HasPrefix(inside, ".."+string(filepath.Separator)) {
					t.Errorf("%s: %s leaves the repository", rel, target)
					continue
				}
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: %s does not exist", rel, target)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(dest, ".md") {
				b, err := os.ReadFile(dest)
				if err == nil && !anchors(string(b))[frag] {
					t.Errorf("%s: %s: no heading with the anchor #%s", rel, target, frag)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links found; is the pattern still right?", checked)
	}
}
