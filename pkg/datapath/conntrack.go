package datapath

import (
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ConnMarks changes and counts connections by their conntrack mark: a
// lane's connections are those whose mark holds the lane's under the
// lane mask.
type ConnMarks interface {
	// Relabel gives every connection whose mark is from under mask the
	// mark to under mask, leaving its other bits; it returns how many it
	// moved.
	Relabel(from, to, mask uint32) (int, error)
	// Count is how many connections have the mark under mask.
	Count(mark, mask uint32) (int, error)
	Close() error
}

// Conntrack is ConnMarks over ctnetlink (ti-mo/conntrack), in one
// network namespace.
type Conntrack struct {
	conn *conntrack.Conn
}

var _ ConnMarks = (*Conntrack)(nil)

// NewConntrack opens a ctnetlink socket in ns (netns.None(): the
// caller's own).
func NewConntrack(ns netns.NsHandle) (*Conntrack, error) {
	cfg := &netlink.Config{}
	if ns != netns.None() {
		cfg.NetNS = int(ns)
	}
	c, err := conntrack.Dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("conntrack: %w", err)
	}
	return &Conntrack{conn: c}, nil
}

// Close releases the socket.
func (c *Conntrack) Close() error { return c.conn.Close() }

// marked lists the IPv4 connections whose mark is mark under mask; the
// kernel filters them.
func (c *Conntrack) marked(mark, mask uint32) ([]conntrack.Flow, error) {
	flows, err := c.conn.DumpFilter(conntrack.NewFilter().Family(netfilter.ProtoIPv4).Mark(mark).MarkMask(mask), nil)
	if err != nil {
		return nil, fmt.Errorf("listing connections of mark %#x/%#x: %w", mark, mask, err)
	}
	return flows, nil
}

// Count counts the connections of mark under mask.
func (c *Conntrack) Count(mark, mask uint32) (int, error) {
	flows, err := c.marked(mark, mask)
	return len(flows), err
}

// Relabel lists the connections of mark from and rewrites each one's
// mark. A connection that ended meanwhile is skipped. The library sends
// no mark of 0, so a connection whose new mark would be 0 keeps its old
// one: to is never 0 for a lane.
func (c *Conntrack) Relabel(from, to, mask uint32) (int, error) {
	flows, err := c.marked(from, mask)
	if err != nil {
		return 0, err
	}
	moved := 0
	var errs []error
	for _, f := range flows {
		mark := f.Mark&^mask | to&mask
		if mark == 0 {
			continue
		}
		err := c.conn.Update(conntrack.Flow{TupleOrig: f.TupleOrig, TupleReply: f.TupleReply, Mark: mark})
		switch {
		case errors.Is(err, unix.ENOENT):
		case err != nil:
			errs = append(errs, err)
		default:
			moved++
		}
	}
	if err := errors.Join(errs...); err != nil {
		return moved, fmt.Errorf("moving %d connections of mark %#x to %#x: %w", len(errs), from, to, err)
	}
	return moved, nil
}
