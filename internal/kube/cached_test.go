package kube

import "testing"

func TestCachedComputesAgainOnlyAfterAChange(t *testing.T) {
	n := 0
	c := NewCached(func() int { n++; return n })
	first, second := c.Get(), c.Get()
	if first != 1 || second != 1 || n != 1 {
		t.Fatalf("computed on every read: %d times", n)
	}
	c.Feed().OnUpdate(nil, nil)
	if c.Get() != 2 || n != 2 {
		t.Errorf("not computed again after a change: %d", n)
	}
}
