package queue

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestDrainHandsOverEveryItemInOrder(t *testing.T) {
	q := New[int](8, func(int) bool { return true }, nil)
	q.Push(1, 2, 3)
	var got []int
	n := q.Drain(func(v int) {
		got = append(got, v)
		if v == 2 {
			q.Push(4) // pushed while draining: handled in the same call
		}
	})
	if n != 4 || !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Fatalf("Drain handled %d: %v, want 4: [1 2 3 4]", n, got)
	}
	if q.Len() != 0 || q.Room() != 8 {
		t.Fatalf("after Drain: len %d room %d, want 0 and 8", q.Len(), q.Room())
	}
	if n := q.Drain(func(int) { t.Fatal("called on an empty queue") }); n != 0 {
		t.Fatalf("Drain of an empty queue handled %d", n)
	}
}

var errClosed = errors.New("closed")

func TestWaitReturnsItemContextOrClosed(t *testing.T) {
	q := New[int](8, func(int) bool { return true }, nil)
	done := make(chan struct{})

	// An item pushed by another goroutine wakes a waiter.
	go q.Push(7)
	if v, err := q.Wait(context.Background(), done, errClosed); err != nil || v != 7 {
		t.Fatalf("Wait = %d, %v; want 7, nil", v, err)
	}

	// The context ends first.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Wait(ctx, done, errClosed); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel: %v, want context.Canceled", err)
	}

	// An item waiting when the owner closes is still handed out, then
	// Wait says closed.
	q.Push(8)
	close(done)
	if v, err := q.Wait(context.Background(), done, errClosed); err != nil || v != 8 {
		t.Fatalf("Wait after close with an item waiting = %d, %v; want 8, nil", v, err)
	}
	if _, err := q.Wait(context.Background(), done, errClosed); !errors.Is(err, errClosed) {
		t.Fatalf("Wait after close: %v, want errClosed", err)
	}
}
