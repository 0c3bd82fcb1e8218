package kube

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCarryKeepsTransitionTimesWhileTheStatusHolds(t *testing.T) {
	then := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	old := []metav1.Condition{
		{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Applied", LastTransitionTime: then},
		{Type: "Degraded", Status: metav1.ConditionFalse, Reason: "AllUp", LastTransitionTime: then},
		{Type: "Gone", Status: metav1.ConditionTrue, LastTransitionTime: then},
	}
	want := []metav1.Condition{
		{Type: "Degraded", Status: metav1.ConditionTrue, Reason: "NodeDown", Message: "1 node"},
		{Type: "Ready", Status: metav1.ConditionTrue, Reason: "StillApplied", Message: "new words"},
		{Type: "New", Status: metav1.ConditionFalse, Reason: "Fresh"},
	}
	got := Carry(old, want)
	if len(got) != 3 || got[0].Type != "Degraded" || got[1].Type != "Ready" || got[2].Type != "New" {
		t.Fatalf("got %+v, want want's types in want's order", got)
	}
	if !got[1].LastTransitionTime.Equal(&then) || got[1].Reason != "StillApplied" || got[1].Message != "new words" {
		t.Errorf("a holding status: %+v, want the old time with the new reason and message", got[1])
	}
	for _, c := range []metav1.Condition{got[0], got[2]} {
		if c.LastTransitionTime.Equal(&then) || c.LastTransitionTime.IsZero() {
			t.Errorf("%s changed or is new: time %v, want now", c.Type, c.LastTransitionTime)
		}
	}
	if old[1].Status != metav1.ConditionFalse {
		t.Error("old was changed")
	}
}
