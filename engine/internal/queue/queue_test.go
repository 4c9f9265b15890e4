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
