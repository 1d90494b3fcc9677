package main

// The bench's own HTTP client, for the parts scenario (parts.go) alone: it measures what
// net/http's transport costs per request beyond writing the request and reading the answer.
//
// net/http's transport gives each connection a reader and a writer goroutine: a request is
// handed to the writer, the answer read by the reader and handed back, and the reader then
// waits on the connection for the next answer, so a request wakes three goroutines. Here the
// caller writes the request and reads the answer itself, on a connection it takes from a
// pool and gives back. It is not a client vigil could use as it stands: plain HTTP/1.1 to one
// address, no proxy, no redirects, no TLS, and a connection the server closed while idle
// fails the request that finds it (the bench's target never closes one).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

type syncPool struct {
	target string
	host   string
	idle   chan *syncConn
}

type syncConn struct {
	c  net.Conn
	br *bufio.Reader
}

// newSyncPool keeps up to idle connections to target's host open between requests.
func newSyncPool(target string, idle int) *syncPool {
	host := target
	if u, err := url.Parse(target); err == nil {
		host = u.Host
	}
	return &syncPool{target: target, host: host, idle: make(chan *syncConn, idle)}
}

// get asks for the target, reads the whole answer and returns its status. Every step has a
// deadline of 2 s, as the floor's net/http client has.
func (p *syncPool) get() (int, error) {
	deadline := time.Now().Add(2 * time.Second)
	var sc *syncConn
	select {
	case sc = <-p.idle:
	default:
		c, err := net.DialTimeout("tcp", p.host, 2*time.Second)
		if err != nil {
			return 0, err
		}
		sc = &syncConn{c: c, br: bufio.NewReader(c)}
	}
	status, err := sc.roundTrip(p.target, deadline)
	if err != nil {
		sc.c.Close()
		return 0, err
	}
	select {
	case p.idle <- sc:
	default:
		sc.c.Close()
	}
	return status, nil
}

func (sc *syncConn) roundTrip(target string, deadline time.Time) (int, error) {
	if err := sc.c.SetDeadline(deadline); err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	if err := req.Write(sc.c); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(sc.br, req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.Close {
		return 0, fmt.Errorf("%s closes the connection: the parts scenario needs kept-alive connections", target)
	}
	return resp.StatusCode, nil
}

// close closes the idle connections.
func (p *syncPool) close() {
	for {
		select {
		case sc := <-p.idle:
			sc.c.Close()
		default:
			return
		}
	}
}
