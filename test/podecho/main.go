// Command podecho is the test nodes' workload: it answers every UDP
// datagram on port 7008 with the datagram itself, until SIGTERM. The
// tests' nodes pull nothing, so its image is built here, as pause's is.
package main

import (
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	conn, err := net.ListenPacket("udp4", ":7008")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			k, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = conn.WriteTo(buf[:k], from)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	conn.Close()
}
