package queue

import "testing"

func TestLimitCountsOnlyCountedItems(t *testing.T) {
	resumed := 0
	q := New[int](4, func(v int) bool { return v >= 0 }, func() { resumed++ })
	q.Push(1, 2, -1, 3, 4)
	if r := q.Room(); r != 0 {
		t.Fatalf("room %d, want 0", r)
	}
	q.Push(-2) // uncounted items are always taken
	if q.Len() != 6 {
		t.Fatalf("len %d", q.Len())
	}
	var got []int
	for {
		v, ok := q.Pop()
		if !ok {
			break
		}
		got = append(got, v)
	}
	want := []int{1, 2, -1, 3, 4, -2}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if resumed != 1 {
		t.Fatalf("drained called %d times, want 1", resumed)
	}
	select {
	case <-q.Ready():
	default:
		t.Fatal("no ready token after pushes")
	}
}

func TestCompactionKeepsOrder(t *testing.T) {
	q := New[int](1<<20, func(int) bool { return true }, nil)
	next, want := 0, 0
	for round := 0; round < 10; round++ {
		for range 3000 {
			q.Push(next)
			next++
		}
		for range 2000 {
			if v, ok := q.Pop(); !ok || v != want {
				t.Fatalf("pop: got %v %v, want %d", v, ok, want)
			}
			want++
		}
	}
	for want < next {
		if v, _ := q.Pop(); v != want {
			t.Fatalf("got %d, want %d", v, want)
		}
		want++
	}
}

// TestByteLimit: with SetByteLimit, TryPush refuses an item that would take
// the counted items' size past the limit (OverBytes, not Full), Push takes
// what a producer decided to push, RoomBytes says what fits, and drained
// is called once the size falls to half the limit.
func TestByteLimit(t *testing.T) {
	resumed := 0
	q := New[int](100, func(v int) bool { return v >= 0 }, func() { resumed++ })
	q.SetByteLimit(100, func(v int) int { return v })
	if r := q.TryPush(60); r != Pushed {
		t.Fatalf("60 of 100 bytes: %v", r)
	}
	if r := q.TryPush(50); r != OverBytes {
		t.Fatalf("110 of 100 bytes: %v, want OverBytes", r)
	}
	if r := q.TryPush(40); r != Pushed {
		t.Fatalf("100 of 100 bytes: %v", r)
	}
	q.Push(-1) // uncounted: no size, always taken
	if q.Bytes() != 100 || q.RoomBytes() != 0 || q.Room() != 98 {
		t.Fatalf("bytes %d, room %d bytes and %d items; want 100, 0, 98", q.Bytes(), q.RoomBytes(), q.Room())
	}
	if it, by := q.Space(); it != q.Room() || by != q.RoomBytes() {
		t.Fatalf("Space %d items, %d bytes; Room %d, RoomBytes %d", it, by, q.Room(), q.RoomBytes())
	}
	if v, _ := q.Pop(); v != 60 { // 100 → 40: crosses half
		t.Fatalf("popped %d", v)
	}
	if resumed != 1 {
		t.Fatalf("drained called %d times when the size fell to half the limit, want 1", resumed)
	}
	q.Pop()
	q.Pop()
	if q.Bytes() != 0 || q.RoomBytes() != 100 || resumed != 1 {
		t.Fatalf("after: bytes %d, room %d, drained %d", q.Bytes(), q.RoomBytes(), resumed)
	}
	if r := New[int](1, func(int) bool { return true }, nil); r.TryPush(1) != Pushed || r.TryPush(1) != Full || r.RoomBytes() <= 1<<30 {
		t.Fatal("without a byte limit: TryPush is bounded by count only and RoomBytes is unbounded")
	}
}
