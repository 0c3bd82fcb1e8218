// Command pause holds a test node's pod sandbox: it waits for SIGTERM or
// SIGINT and exits, as registry.k8s.io/pause does. The tests' nodes pull
// nothing, so their sandbox image is built here.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
