package checks

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync"
)

// A run keeps cookies as a browser does, in a jar of its own that starts empty: a login
// that sets a session cookie and redirects to the page that reads it is followed as a
// visitor's browser follows it (without a jar, the page sent vigil back to the login, a
// loop past 20 redirects that failed a service every visitor gets through), and a
// journey's later steps send the cookies its earlier steps were given. Nothing is kept
// from one run to the next.

type jarKey struct{}

// withCookieJar makes every request under ctx keep its cookies in one jar: a journey's.
func withCookieJar(ctx context.Context) context.Context {
	return context.WithValue(ctx, jarKey{}, &lazyJar{})
}

// jarFor is the jar a request under ctx keeps its cookies in: the journey's, or one of
// its own for its redirects; nil when it follows none and no journey holds it.
func jarFor(ctx context.Context, follow bool) http.CookieJar {
	if j, ok := ctx.Value(jarKey{}).(*lazyJar); ok {
		return j
	}
	if follow {
		return &lazyJar{}
	}
	return nil
}

// lazyJar is a cookie jar made at the first cookie: most answers set none, and a run of
// the http kind pays for a jar only when one does.
type lazyJar struct {
	mu  sync.Mutex
	jar *cookiejar.Jar
}

func (j *lazyJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.jar == nil {
		j.jar, _ = cookiejar.New(nil) // never fails without options
	}
	j.jar.SetCookies(u, cookies)
}

func (j *lazyJar) Cookies(u *url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.jar == nil {
		return nil
	}
	return j.jar.Cookies(u)
}
