package datapath

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A dump the kernel marks interrupted (NLM_F_DUMP_INTR) is read again,
// what it collected dropped; one interrupted every time fails, and is
// never taken as complete. The mark is put in by the receive seam, on a
// real kernel's answers.
func TestDumpInterruptedIsReadAgain(t *testing.T) {
	n := nodeWorld(t)
	k := newKernel(t, n)
	want, err := k.batch.dumpRoutes(unix.RT_TABLE_MAIN)
	if err != nil || len(want) == 0 {
		t.Fatalf("the main table: %v %v", want, err)
	}
	// interrupt marks the first interrupted datagrams of dumps.
	interrupt := func(times int) (calls *int) {
		calls = new(int)
		k.batch.conn.(*sockConn).recvmsg = func(fd int, p []byte) (int, int, error) {
			n, flags, err := recvmsg(fd, p)
			if err == nil && n >= unix.NLMSG_HDRLEN && *calls < times {
				*calls++
				f := uint16(p[6]) | uint16(p[7])<<8 // little-endian hosts only (x86, arm64)
				f |= unix.NLM_F_DUMP_INTR
				p[6], p[7] = byte(f), byte(f>>8)
			}
			return n, flags, err
		}
		return calls
	}
	calls := interrupt(2)
	got, err := k.batch.dumpRoutes(unix.RT_TABLE_MAIN)
	if err != nil || !slices.Equal(got, want) || *calls != 2 {
		t.Fatalf("interrupted twice: %v (%v), %d interrupts; want the whole table %v", got, err, *calls, want)
	}
	// ReadNode too: what the first tries collected is not counted twice.
	interrupt(1)
	node, err := k.ReadNode(VPCHint{Link: "vpc0"})
	if err != nil || len(node.Connected) != 2 {
		t.Fatalf("ReadNode after an interrupted dump: %+v %v, want the 2 connected routes once", node, err)
	}
	interrupt(1 << 30)
	if _, err := k.batch.dumpRoutes(unix.RT_TABLE_MAIN); !errors.Is(err, errDumpInterrupted) {
		t.Fatalf("interrupted every time: %v, want errDumpInterrupted", err)
	}
}

// A kernel that does not answer fails the exchange within the socket's
// timeout, naming it, instead of blocking the reconcile loop for good.
func TestNetlinkReceiveIsBounded(t *testing.T) {
	n := nodeWorld(t)
	k := newKernel(t, n)
	k.batch.timeout = 50 * time.Millisecond
	start := time.Now()
	// Nothing was asked: nothing comes.
	err := k.batch.receive(func(nlHeader, []byte) bool { return true })
	took := time.Since(start)
	t.Logf("gave up after %s: %v", took, err)
	if err == nil || !strings.Contains(err.Error(), "no answer from the kernel within 50ms") || took < 50*time.Millisecond || took > 5*time.Second {
		t.Fatalf("a receive with nothing to come: %v after %s, want a bounded error", err, took)
	}
	// The socket still works afterwards.
	if _, err := k.batch.dumpRoutes(unix.RT_TABLE_MAIN); err != nil {
		t.Fatal(err)
	}
}

// The nftables connection's exchanges are bounded too: with nothing to
// come, a receive after bound fails at the deadline.
func TestNFTablesReceiveIsBounded(t *testing.T) {
	n := nodeWorld(t)
	c, err := NewNFTConn(int(n.NS))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseLasting()
	c.timeout = 50 * time.Millisecond
	c.bound()
	start := time.Now()
	_, err = c.sock.Receive()
	took := time.Since(start)
	t.Logf("gave up after %s: %v", took, err)
	if err == nil || !strings.Contains(err.Error(), "timeout") || took > 5*time.Second {
		t.Fatalf("a receive with nothing to come: %v after %s, want a timeout", err, took)
	}
}
