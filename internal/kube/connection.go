package kube

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Connection logs, at the default level, when requests to the API server
// start failing and when one succeeds again, once each: an operator
// reading a router's log during an outage sees when it lost the control
// plane, that the kernel stayed as it was, and when it came back.
type Connection struct {
	log logr.Logger
	now func() time.Time

	mu   sync.Mutex
	lost time.Time // zero while reachable
}

// NewConnection logs to log.
func NewConnection(log logr.Logger) *Connection {
	return &Connection{log: log, now: time.Now}
}

// Lost says since when requests fail (zero: they do not).
func (c *Connection) Lost() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// report records how a request for what went.
func (c *Connection) report(what string, err error) {
	if errors.Is(err, context.Canceled) {
		return // shutting down
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil && c.lost.IsZero():
		c.lost = c.now()
		c.log.Error(err, "lost the API server: the kernel stays as it is; retrying about every second", "request", what)
	case err == nil && !c.lost.IsZero():
		c.log.Info("API server reachable again", "request", what, "after", c.now().Sub(c.lost).Round(time.Millisecond).String())
		c.lost = time.Time{}
	}
}
