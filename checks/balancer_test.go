package checks

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// l4Balancer is a loopback TCP load balancer as kube-proxy, IPVS or a cloud network load
// balancer is one: it picks a backend per connection, and a connection stays on the backend
// it was given for its life, also once that backend has left the rotation (draining).
type l4Balancer struct {
	ln       net.Listener
	backends atomic.Pointer[[]string] // host:port in rotation, in turn
	next     atomic.Int64
	conns    atomic.Int64 // connections accepted
	mu       sync.Mutex
	open     map[net.Conn]bool
	wg       sync.WaitGroup
}

// newL4Balancer starts a balancer over the backends' URLs (http://host:port) that stops at
// the test's end.
func newL4Balancer(t *testing.T, backends ...string) *l4Balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &l4Balancer{ln: ln, open: map[net.Conn]bool{}}
	b.rotate(backends...)
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

// URL is the balancer's address.
func (b *l4Balancer) URL() string { return "http://" + b.ln.Addr().String() }

// rotate sets the backends new connections go to; established ones stay where they are.
func (b *l4Balancer) rotate(urls ...string) {
	hosts := make([]string, len(urls))
	for i, u := range urls {
		hosts[i] = strings.TrimPrefix(u, "http://")
	}
	b.backends.Store(&hosts)
}

func (b *l4Balancer) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.conns.Add(1)
		hosts := *b.backends.Load()
		to := hosts[int(b.next.Add(1)-1)%len(hosts)]
		b.wg.Add(1)
		go b.pipe(c, to)
	}
}

func (b *l4Balancer) track(c net.Conn, on bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on && b.open == nil {
		return false // closed
	}
	if on {
		b.open[c] = true
	} else if b.open != nil {
		delete(b.open, c)
	}
	return true
}

func (b *l4Balancer) pipe(c net.Conn, to string) {
	defer b.wg.Done()
	defer c.Close()
	up, err := net.Dial("tcp", to)
	if err != nil {
		return // the client sees the connection close: as a balancer whose backend is gone
	}
	defer up.Close()
	if !b.track(c, true) || !b.track(up, true) {
		return
	}
	defer b.track(c, false)
	defer b.track(up, false)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done // either side closed: close both, and the other copy ends
	c.Close()
	up.Close()
	<-done
}

func (b *l4Balancer) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.open {
		c.Close()
	}
	b.open = nil
	b.mu.Unlock()
	b.wg.Wait()
}
