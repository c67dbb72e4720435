package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
)

// rawTLSConfig returns the plain crypto/tls configuration of the baseline
// for a QEMU-layout directory: the endpoint's certificate and key, the CA
// as the only root, TLS 1.3 only; for the server a required and verified
// client certificate (QEMU's verify-peer=on) and no session tickets, as
// livemig's own server; for the client, host as the name the server's
// certificate must match, as livemig's default tls-hostname.
func rawTLSConfig(dir string, server bool, host string) (*tls.Config, error) {
	who := "client"
	if server {
		who = "server"
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, who+"-cert.pem"), filepath.Join(dir, who+"-key.pem"))
	if err != nil {
		return nil, fmt.Errorf("raw TLS %s credentials in %s: %w", who, dir, err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca-cert.pem"))
	if err != nil {
		return nil, fmt.Errorf("raw TLS %s credentials: %w", who, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("raw TLS %s credentials: %s holds no certificate", who, filepath.Join(dir, "ca-cert.pem"))
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13}
	if server {
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.SessionTicketsDisabled = true
	} else {
		cfg.RootCAs = pool
		cfg.ServerName = host
	}
	return cfg, nil
}
