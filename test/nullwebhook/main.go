// Command nullwebhook is the least a validating webhook can do: it admits
// every request after reading only its uid and name (it refuses the name
// "refuse-me", so that a test can tell that the API server asks it). The
// admission benchmark runs it beside cmd/webhook, as a baseline: what any
// webhook adds to a create on the same machine, whatever it checks. With
// --delay it answers that much later: an API server that stalls the
// writes it sends here, for tests that must not wait on them.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"path/filepath"
	"time"
)

func main() {
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	addr := flag.String("addr", "127.0.0.1:9444", "address to serve on")
	delay := flag.Duration("delay", 0, "how long to wait before each answer")
	flag.Parse()
	cert, err := tls.LoadX509KeyPair(filepath.Join(*certDir, "tls.crt"), filepath.Join(*certDir, "tls.key"))
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Addr: *addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(*delay)
			admit(w, r)
		}),
		// HTTP/1.1 only, as cmd/webhook serves by default.
		TLSConfig:    &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	log.Fatal(srv.ListenAndServeTLS("", ""))
}

func admit(w http.ResponseWriter, r *http.Request) {
	var review struct {
		Request struct {
			UID  string `json:"uid"`
			Name string `json:"name"`
		} `json:"request"`
	}
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	uid, _ := json.Marshal(review.Request.UID)
	allowed := review.Request.Name != "refuse-me"
	fmt.Fprintf(w, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":%s,"allowed":%t,"status":{"message":"refused by nullwebhook"}}}`, uid, allowed)
}
