package policy

import (
	"strings"
	"testing"
)

func TestDefaultOptionsAreValid(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatal(err)
	}
}

// Each check alone, then all at once: every mistake is named by its flag.
func TestOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"a reserved table", func(o *Options) { o.Tables[1] = 254 }, "--tables: 254 is not a free table number"},
		{"the same table twice", func(o *Options) { o.Tables[1] = o.Tables[0] }, "--tables: the two tables must differ"},
		{"two bits", func(o *Options) { o.Mark = 0x60 }, "--mark: 0x60 is not a single bit"},
		{"no room for the slots", func(o *Options) { o.Mark = 0x20 }, "leaves no room below it"},
		{"probe rules after the mark rule", func(o *Options) { o.ProbePriority = o.MarkPriority + 1 }, "--probe-rule-priority"},
		{"mark rule after the steering rule", func(o *Options) { o.MarkPriority = o.Priority }, "--mark-rule-priority"},
		{"steering rule after main", func(o *Options) { o.Priority = 32766 }, "--rule-priority 32766"},
		{"probe tables over main", func(o *Options) { o.ProbeTableBase = 200 }, "--probe-table-base 200"},
		{"probe tables over a steering table", func(o *Options) { o.ProbeTableBase = o.Tables[0] - 1 }, "--probe-table-base"},
		{"lane rules after the steering rule", func(o *Options) { o.LanePriority = o.Priority + 1 }, "--lane-rule-priority"},
		{"lane rules at the mark rule's priority", func(o *Options) { o.LanePriority = o.MarkPriority }, "--lane-rule-priority"},
		{"lane tables over the probes'", func(o *Options) { o.LaneTableBase = o.ProbeTableBase + 10 }, "--lane-table-base"},
		{"lane tables over main", func(o *Options) { o.LaneTableBase = 250 }, "--lane-table-base 250"},
		{"a taken protocol", func(o *Options) { o.Protocol = 4 }, "--route-protocol 4"},
	} {
		o := DefaultOptions()
		c.change(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	o := DefaultOptions()
	o.Tables[1], o.Mark, o.Protocol = 255, 0x60, 0
	err := o.Validate()
	for _, want := range []string{"--tables", "--mark", "--route-protocol"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("all at once: %v, want %s named", err, want)
		}
	}
}

func TestParseTablesAndMark(t *testing.T) {
	if tb, err := ParseTables(" 100, 101"); err != nil || tb != [2]int{100, 101} {
		t.Errorf("%v %v", tb, err)
	}
	for _, bad := range []string{"1", "1,2,3", "a,2"} {
		if _, err := ParseTables(bad); err == nil || !strings.Contains(err.Error(), "--tables") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if m, err := ParseMark("0x40"); err != nil || m != 0x40 {
		t.Errorf("%v %v", m, err)
	}
	if _, err := ParseMark("forty"); err == nil || !strings.Contains(err.Error(), "--mark") {
		t.Errorf("%v", err)
	}
}
