package configs

import (
	"regexp"
	"time"
)

// KindBrowser is a real Chromium page load or journey.
const KindBrowser = "browser"

// BrowserSpec is the browser kind: a real Chromium page load or journey.
type BrowserSpec struct {
	URL          string            `koanf:"url"`
	WaitFor      string            `koanf:"wait_for"`
	Steps        []*BrowserStep    `koanf:"steps"`
	Headers      map[string]string `koanf:"headers"`
	Cookies      []*Cookie         `koanf:"cookies"`
	Viewport     Viewport          `koanf:"viewport"`
	IgnoreErrors []string          `koanf:"ignore_errors"`
	ignore       []*regexp.Regexp  // IgnoreErrors, compiled by validation
	// NavigationTimeout bounds each navigation's wait for the load event (the url, and
	// every navigate step) inside the check's timeout; unset or longer, the timeout.
	NavigationTimeout time.Duration `koanf:"navigation_timeout"`
	// Dialogs answers the page's JavaScript dialogs: "dismiss" or "accept". Unset, they are
	// dismissed and any dialog fails the default assertions; set, the check expects them.
	Dialogs string `koanf:"dialogs" jsonschema:"enum=accept,enum=dismiss"`
	// ServedVersion is where the page names the version that served it: a response header
	// of its document, or an element (selector, and attribute to read one of its attributes
	// rather than its text), read once the visit is done. In a deploy's verification a page
	// of another version is inconclusive, not judged. A page is HTML: field is refused.
	ServedVersion *ServedVersion `koanf:"served_version"`
}

// BrowserStep is one action of a browser journey. Exactly one action field is set.
type BrowserStep struct {
	Navigate   string        `koanf:"navigate"`
	Click      string        `koanf:"click"`
	Type       *TypeArg      `koanf:"type"`
	WaitFor    string        `koanf:"wait_for"`
	AssertText *TextArg      `koanf:"assert_text"`
	Sleep      time.Duration `koanf:"sleep"`
}

// TypeArg types Text into the element matching Selector.
type TypeArg struct {
	Selector string `koanf:"selector"`
	Text     Secret `koanf:"text"`
}

// TextArg asserts the element matching Selector contains Contains.
type TextArg struct {
	Selector string `koanf:"selector"`
	Contains string `koanf:"contains"`
}

// Cookie is set before the first navigation.
type Cookie struct {
	Name   string `koanf:"name"`
	Value  Secret `koanf:"value"`
	Domain string `koanf:"domain"`
	Path   string `koanf:"path"`
}

// Viewport is the browser window size.
type Viewport struct {
	Width  int `koanf:"width"`
	Height int `koanf:"height"`
}

// IgnoreRegexps returns ignore_errors, compiled when the config was validated.
func (b *BrowserSpec) IgnoreRegexps() []*regexp.Regexp { return b.ignore }

func (b *BrowserSpec) applyDefaults(_ *Config, ch *Check) {
	setInt(&b.Viewport.Width, 1280)
	setInt(&b.Viewport.Height, 800)
	if b.NavigationTimeout == 0 || b.NavigationTimeout > ch.Timeout {
		b.NavigationTimeout = ch.Timeout
	}
}

func (b *BrowserSpec) validate(v *validator, _ *Check, p string) {
	if b.URL == "" && (len(b.Steps) == 0 || b.Steps[0] == nil || b.Steps[0].Navigate == "") {
		v.errf(p+".url", "set the page to load, or start steps with a navigate", "missing")
	} else if b.URL != "" {
		v.url(p+".url", b.URL)
	}
	if b.NavigationTimeout < 0 && v.c.written(p+".navigation_timeout") {
		v.errf(p+".navigation_timeout", "use a positive duration up to the check's timeout, e.g. 10s, or leave it out (the check's timeout)", "%s is negative", b.NavigationTimeout)
	}
	for i, st := range b.Steps {
		sp := indexPath(p+".steps", i)
		if st == nil {
			v.errf(sp, "remove the empty item", "empty step")
			continue
		}
		if n := countSet(st.Navigate != "", st.Click != "", st.Type != nil, st.WaitFor != "", st.AssertText != nil, st.Sleep != 0); n != 1 {
			v.errf(sp, "give each step exactly one of navigate, click, type, wait_for, assert_text, sleep", "a step has %d actions", n)
		}
		if st.Navigate != "" {
			v.url(sp+".navigate", st.Navigate)
		}
		if st.Sleep < 0 {
			v.errf(sp+".sleep", "use a positive duration up to 30s, e.g. 500ms", "%s is negative", st.Sleep)
		}
		if st.Sleep > 30*time.Second {
			v.errf(sp+".sleep", "use wait_for with a selector instead of long sleeps", "%s is longer than the 30s a sleep may take", st.Sleep)
		}
		if st.Type != nil && st.Type.Selector == "" {
			v.errf(sp+".type.selector", "set the CSS selector of the field to type into", "missing")
		}
		if st.AssertText != nil && st.AssertText.Selector == "" {
			v.errf(sp+".assert_text.selector", "set the CSS selector whose text to check", "missing")
		}
	}
	if sv := b.ServedVersion; sv != nil {
		const fix = `set header (X-App-Version, of the page's document) or selector (meta[name="app-version"], with attribute: content), one of them`
		switch {
		case sv.Field != "":
			v.errf(p+".served_version.field", fix, "a page is HTML, not a JSON body")
		case sv.Header == "" && sv.Selector == "":
			v.errf(p+".served_version", fix, "neither header nor selector is set")
		case sv.Header != "" && sv.Selector != "":
			v.errf(p+".served_version", fix, "both header and selector are set")
		case sv.Attribute != "" && sv.Selector == "":
			v.errf(p+".served_version.attribute", "attribute names an attribute of the element selector finds: set selector too", "attribute without selector")
		}
	}
	switch b.Dialogs {
	case "", "accept", "dismiss":
	default:
		v.errf(p+".dialogs", `use "accept" (OK: confirm() is true, a page may be left) or "dismiss" (Cancel)`, "%q is not a way to answer a dialog", b.Dialogs)
	}
	b.ignore = b.ignore[:0]
	for i, src := range b.IgnoreErrors {
		if re := v.regexp(indexPath(p+".ignore_errors", i), src); re != nil {
			b.ignore = append(b.ignore, re)
		}
	}
	for i, ck := range b.Cookies {
		if ck == nil || ck.Name == "" {
			v.errf(indexPath(p+".cookies", i), "give each cookie a name and value", "cookie without a name")
		}
	}
	if b.Viewport.Width < 100 || b.Viewport.Height < 100 || b.Viewport.Width > 7680 || b.Viewport.Height > 4320 {
		v.errf(p+".viewport", "use a width and height between 100 and 7680x4320", "%dx%d is out of range", b.Viewport.Width, b.Viewport.Height)
	}
}
