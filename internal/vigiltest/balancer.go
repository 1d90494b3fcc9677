package vigiltest

import (
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Balancer is a loopback TCP load balancer as kube-proxy, IPVS or a cloud network load
// balancer is one: it picks a backend per connection, and a connection stays on the
// backend it was given for its life, also once that backend has left the rotation
// (draining).
type Balancer struct {
	ln       net.Listener
	random   bool                     // pick at random (kube-proxy's iptables mode), else in turn
	backends atomic.Pointer[[]string] // host:port in rotation
	next     atomic.Int64
	conns    atomic.Int64 // connections accepted
	mu       sync.Mutex
	open     map[net.Conn]bool
	wg       sync.WaitGroup
}

// NewBalancer starts a balancer over the backends' URLs (http://host:port) that takes them
// in turn, or at random when random is set, and stops at the test's end.
func NewBalancer(t *testing.T, random bool, backends ...string) *Balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &Balancer{ln: ln, random: random, open: map[net.Conn]bool{}}
	b.Rotate(backends...)
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

// URL is the balancer's address.
func (b *Balancer) URL() string { return "http://" + b.ln.Addr().String() }

// Conns is how many connections the balancer accepted.
func (b *Balancer) Conns() int64 { return b.conns.Load() }

// Rotate sets the backends new connections go to; established ones stay where they are.
func (b *Balancer) Rotate(urls ...string) {
	hosts := make([]string, len(urls))
	for i, u := range urls {
		hosts[i] = strings.TrimPrefix(u, "http://")
	}
	b.backends.Store(&hosts)
}

func (b *Balancer) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.conns.Add(1)
		hosts := *b.backends.Load()
		i := int(b.next.Add(1) - 1)
		if b.random {
			i = rand.IntN(len(hosts))
		}
		b.wg.Add(1)
		go b.pipe(c, hosts[i%len(hosts)])
	}
}

func (b *Balancer) track(c net.Conn, on bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open == nil {
		return !on // closed: nothing new is tracked
	}
	if on {
		b.open[c] = true
	} else {
		delete(b.open, c)
	}
	return true
}

func (b *Balancer) pipe(c net.Conn, to string) {
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

func (b *Balancer) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.open {
		c.Close()
	}
	b.open = nil
	b.mu.Unlock()
	b.wg.Wait()
}
