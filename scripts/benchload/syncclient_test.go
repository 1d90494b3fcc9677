package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The bench's own client asks what net/http would, reuses its connections, and fails, not
// hangs or succeeds, where the server does not keep the connection.
func TestSyncPool(t *testing.T) {
	srv := httptest.NewUnstartedServer(targetHandler())
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := newSyncPool(srv.URL+peerPath, 4)
	defer p.close()
	for i := range 20 {
		if status, err := p.get(); err != nil || status != http.StatusOK {
			t.Fatalf("request %d: %d, %v", i, status, err)
		}
	}
	if n, err := served(srv.URL); err != nil || n != 20 {
		t.Fatalf("the target served %d at %s, %v; want 20", n, peerPath, err)
	}
	if n := conns.Load(); n != 2 { // the pool's one connection, and served's own
		t.Errorf("%d connections for 20 requests one after the other and the count; want 2", n)
	}

	closing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = w.Write([]byte("ok"))
	}))
	defer closing.Close()
	if _, err := newSyncPool(closing.URL, 4).get(); err == nil || !strings.Contains(err.Error(), "closes the connection") {
		t.Errorf("a server that closes each connection: %v; want an error saying so", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := newSyncPool("http://"+addr+"/", 4).get(); err == nil {
		t.Error("nothing listening: no error")
	}
}
