package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Environment of the children that serve TLS: the PEM files of [benchCert].
const (
	childCertEnv = "CORSGATE_BENCH_TLS_CERT"
	childKeyEnv  = "CORSGATE_BENCH_TLS_KEY"
)

// benchCert is the self-signed certificate every TLS target serves: ECDSA
// P-256 (what a public CA issues most often today), for 127.0.0.1 and
// localhost, made at the start of each run and trusted by the bench's
// clients only.
type benchCert struct {
	certFile, keyFile string
	pool              *x509.CertPool
}

// newBenchCert makes the certificate and writes its PEM files into dir.
func newBenchCert(dir string) (benchCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return benchCert{}, fmt.Errorf("certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return benchCert{}, fmt.Errorf("certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "corsgate bench"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return benchCert{}, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return benchCert{}, fmt.Errorf("marshal certificate key: %w", err)
	}
	c := benchCert{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), pool: x509.NewCertPool()}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(c.certFile, certPEM, 0o600); err != nil {
		return benchCert{}, err
	}
	if err := os.WriteFile(c.keyFile, keyPEM, 0o600); err != nil {
		return benchCert{}, err
	}
	c.pool.AppendCertsFromPEM(certPEM)
	return c, nil
}

// env is the children's environment that hands them the certificate.
func (c benchCert) env() []string {
	return []string{childCertEnv + "=" + c.certFile, childKeyEnv + "=" + c.keyFile}
}

// childTLSConfig loads the certificate the bench handed a child, for a
// server speaking HTTP/1.1 and HTTP/2.
func childTLSConfig() (*tls.Config, error) {
	certFile, keyFile := os.Getenv(childCertEnv), os.Getenv(childKeyEnv)
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%s or %s not set", childCertEnv, childKeyEnv)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load the bench certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
