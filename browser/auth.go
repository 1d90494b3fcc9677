package browser

// Pages behind HTTP authentication. A document that answers 401 with a WWW-Authenticate
// challenge (or 407 from a proxy) is a sign-in prompt in a visitor's browser, not a page:
// headless Chromium, with nobody to type into the prompt, ends the navigation with
// net::ERR_INVALID_AUTH_CREDENTIALS and shows nothing. That is the server's answer (a
// deploy that put the page behind a login, or a check whose credentials were refused), so
// it is a fault of the page, not something vigil could not measure.

import (
	"fmt"
	"net/http"
)

// LoginPromptError is a visit's error when a navigation's document answered with an HTTP
// authentication challenge and Chromium showed no page.
type LoginPromptError struct {
	URL       string
	Status    int
	Challenge string
	// Sent says whether the visit sent an Authorization header to the page's origin;
	// Elsewhere, that it has one for the origins it navigates to, and a redirect took the
	// document to another, which never gets it.
	Sent, Elsewhere bool
}

func (e *LoginPromptError) Error() string {
	header, whose := "WWW-Authenticate", "credentials"
	if e.Status == http.StatusProxyAuthRequired {
		header, whose = "Proxy-Authenticate", "proxy credentials"
	}
	challenge := e.Challenge
	if challenge == "" {
		challenge = "none given"
	}
	msg := fmt.Sprintf("GET %s: answered %d %s asking for %s (%s: %s): a browser shows a sign-in prompt, not the page (net::ERR_INVALID_AUTH_CREDENTIALS)",
		e.URL, e.Status, http.StatusText(e.Status), whose, header, challenge)
	switch {
	case e.Sent:
		return msg + "; the Authorization header the check sends was refused"
	case e.Elsewhere:
		return msg + "; the check's headers go only to the origins it navigates to, and a redirect brought the page to another: navigate to this one"
	}
	return msg + "; a check of a page behind HTTP authentication sends its credentials in headers (Authorization)"
}

// loginPrompt returns the LoginPromptError of a navigation that Chromium ended with
// net::ERR_INVALID_AUTH_CREDENTIALS after its document answered 401 or 407; nil otherwise.
func (vr *visitRun) loginPrompt() *LoginPromptError {
	doc := vr.rec.lastDocument()
	if doc.status != http.StatusUnauthorized && doc.status != http.StatusProxyAuthRequired {
		return nil
	}
	_, auth := lookupFold(vr.v.Headers, "Authorization")
	ours := false
	for _, st := range vr.steps {
		ours = ours || (st.Kind == StepNavigate && origin(st.URL) == origin(doc.url))
	}
	return &LoginPromptError{URL: doc.url, Status: doc.status, Challenge: doc.challenge, Sent: auth && ours, Elsewhere: auth && !ours}
}
