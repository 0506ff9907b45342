package edge

import (
	"testing"
	"time"
)

// fakeClock is a settable clock for tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestBreaker(t *testing.T) {
	type step struct {
		op    string // "allow", "ok", "fail", "wait"
		d     time.Duration
		want  bool         // for allow
		state BreakerState // after the step
	}
	const cool = 5 * time.Second
	const (
		C = BreakerClosed
		H = BreakerHalfOpen
		O = BreakerOpen
	)
	tests := []struct {
		name  string
		steps []step
	}{
		{"failures below the threshold keep it closed", []step{
			{op: "fail", state: C},
			{op: "fail", state: C},
			{op: "ok", state: C},
			{op: "fail", state: C},
			{op: "fail", state: C},
			{op: "allow", want: true, state: C},
		}},
		{"consecutive failures open it; open refuses", []step{
			{op: "fail", state: C}, {op: "fail", state: C}, {op: "fail", state: O},
			{op: "allow", want: false, state: O},
			{op: "wait", d: cool - time.Millisecond, state: O},
			{op: "allow", want: false, state: O},
		}},
		{"after the cool-down one probe; success closes", []step{
			{op: "fail", state: C}, {op: "fail", state: C}, {op: "fail", state: O},
			{op: "wait", d: cool, state: H},
			{op: "allow", want: true, state: H},
			{op: "allow", want: false, state: H}, // only one probe
			{op: "ok", state: C},
			{op: "allow", want: true, state: C},
		}},
		{"a failed probe reopens for another cool-down", []step{
			{op: "fail", state: C}, {op: "fail", state: C}, {op: "fail", state: O},
			{op: "wait", d: cool, state: H},
			{op: "allow", want: true, state: H},
			{op: "fail", state: O},
			{op: "wait", d: cool / 2, state: O},
			{op: "allow", want: false, state: O},
			{op: "wait", d: cool / 2, state: H},
			{op: "allow", want: true, state: H},
		}},
		{"a probe that never reports is replaced after a cool-down", []step{
			{op: "fail", state: C}, {op: "fail", state: C}, {op: "fail", state: O},
			{op: "wait", d: cool, state: H},
			{op: "allow", want: true, state: H},
			{op: "wait", d: cool - time.Millisecond, state: H},
			{op: "allow", want: false, state: H},
			{op: "wait", d: time.Millisecond, state: H},
			{op: "allow", want: true, state: H},
		}},
		{"a late failure report leaves an open breaker open", []step{
			{op: "fail", state: C}, {op: "fail", state: C}, {op: "fail", state: O},
			{op: "fail", state: O},
			{op: "wait", d: cool - time.Millisecond, state: O},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1e9, 0)}
			b := NewBreaker(3, cool, clk.now)
			for i, st := range tt.steps {
				switch st.op {
				case "allow":
					if got := b.Allow(); got != st.want {
						t.Fatalf("step %d: Allow() = %v, want %v", i, got, st.want)
					}
				case "ok":
					b.Success()
				case "fail":
					b.Failure()
				case "wait":
					clk.advance(st.d)
				}
				if got := b.State(); got != st.state {
					t.Fatalf("step %d (%s): State() = %v, want %v", i, st.op, got, st.state)
				}
			}
		})
	}
}
