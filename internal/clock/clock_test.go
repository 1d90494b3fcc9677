package clock

import (
	"testing"
	"time"
)

func TestFakeFiresInOrder(t *testing.T) {
	t.Parallel()
	f := NewFake(time.Unix(0, 0))
	a, b, c := f.NewTimer(3*time.Second), f.NewTimer(time.Second), f.NewTimer(10*time.Second)
	if !c.Stop() || c.Stop() {
		t.Fatal("Stop must report whether it stopped a pending timer")
	}
	f.Advance(5 * time.Second)
	gotB, gotA := <-b.C(), <-a.C()
	if gotB != time.Unix(1, 0) || gotA != time.Unix(3, 0) {
		t.Errorf("fired at %v and %v", gotB, gotA)
	}
	if f.Now() != time.Unix(5, 0) || f.Pending() != 0 {
		t.Errorf("now %v pending %d", f.Now(), f.Pending())
	}
	select {
	case <-c.C():
		t.Error("a stopped timer fired")
	default:
	}
}
