package state

import (
	"testing"

	"github.com/weir-dev/weir/windowing"
)

func TestNextTimerFrom(t *testing.T) {
	b := NewMem()
	defer b.Close()
	for _, at := range []windowing.Time{-5, 10, 20, 30} {
		if err := SetTimer(b, Timer{Op: 1, KG: 3, Domain: EventTime, Time: at, Key: []byte{byte(at + 10)}, Name: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		from, upTo windowing.Time
		want       windowing.Time
		ok         bool
	}{
		{windowing.MinTime, windowing.MaxTime, -5, true},
		{0, windowing.MaxTime, 10, true},
		{10, windowing.MaxTime, 10, true},
		{11, 25, 20, true},
		{21, 25, 0, false},
		{31, windowing.MaxTime, 0, false},
	} {
		got, ok, err := NextTimerFrom(b, 1, 3, EventTime, c.from, c.upTo)
		if err != nil {
			t.Fatal(err)
		}
		if ok != c.ok || ok && got.Time != c.want {
			t.Errorf("from %d up to %d: got %d %v, want %d %v", c.from, c.upTo, got.Time, ok, c.want, c.ok)
		}
	}
}
