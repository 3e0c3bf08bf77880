package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tokenServer is a Docker-Hub-style token service: it takes basic
// credentials and hands out JWTs (ES256, certificate in x5c) that the
// registry, configured with the certificate, trusts.
type tokenServer struct {
	url      string
	certFile string
	key      *ecdsa.PrivateKey
	der      []byte
	user     string
	password string
}

const (
	tokenService = "tent-test-registry"
	tokenIssuer  = "tent-test-token-server"
)

func startTokenServer(t *testing.T, user, password string) *tokenServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: tokenIssuer},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{certFile: filepath.Join(t.TempDir(), "token.pem"), key: key, der: der, user: user, password: password}
	if err := os.WriteFile(ts.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(ts.serve)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	// By name: the protocol library refuses realms at private IP literals
	// other than the registry's own (a guard against SSRF).
	ts.url = fmt.Sprintf("http://localhost:%d/token", l.Addr().(*net.TCPAddr).Port)
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	u, p, ok := r.BasicAuth()
	if !ok || u != ts.user || p != ts.password {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"details":"incorrect username or password"}`)
		return
	}
	var access []map[string]any
	for _, scope := range r.URL.Query()["scope"] {
		parts := strings.Split(scope, ":")
		if len(parts) == 3 {
			access = append(access, map[string]any{"type": parts[0], "name": parts[1], "actions": strings.Split(parts[2], ",")})
		}
	}
	now := time.Now()
	claims := map[string]any{"iss": tokenIssuer, "sub": u, "aud": tokenService, "exp": now.Add(5 * time.Minute).Unix(),
		"nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(), "jti": fmt.Sprint(now.UnixNano()), "access": access}
	header := map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.der)}}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	rr, ss, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	token := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": token, "access_token": token, "expires_in": 300})
}

// TestRegistryTokenAuth logs in to a registry behind a token service with
// the tent CLI (credentials kept in a docker config.json), pushes and
// pulls through it, and meets the errors of missing and wrong passwords.
func TestRegistryTokenAuth(t *testing.T) {
	ts := startTokenServer(t, "alice", "s3cret")
	reg := startRegistry(t, fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
		ts.url, tokenService, tokenIssuer, ts.certFile))
	e := startTent(t)
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	private := reg.addr + "/private:1"
	e.tentOK(t, "tag", "busybox:latest", private)

	out, errOut, code := e.tent(nil, "push", private)
	if code == 0 || !strings.Contains(out+errOut, "unauthorized") {
		t.Errorf("push without login: exit %d: %s%s", code, out, errOut)
	}
	out, errOut, code = e.tent(nil, "login", "-u", "alice", "-p", "wrong", reg.addr)
	if code == 0 || !strings.Contains(errOut, "incorrect username or password") {
		t.Errorf("login with a wrong password: exit %d: %s%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(cfgDir, "config.json")); strings.Contains(string(b), reg.addr) {
		t.Errorf("a failed login stored credentials:\n%s", b)
	}
	if out, errOut, code := e.tent(strings.NewReader("s3cret\n"), "login", "-u", "alice", "--password-stdin", reg.addr); code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: exit %d: %s%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(cfgDir, "config.json")); !strings.Contains(string(b), reg.addr) {
		t.Errorf("login stored no credentials:\n%s", b)
	}
	if out := e.tentOK(t, "push", private); !strings.Contains(out, "1: digest: sha256:") {
		t.Errorf("push after login:\n%s", out)
	}
	e.tentOK(t, "rmi", private)
	if out := e.tentOK(t, "pull", private); !strings.Contains(out, "Downloaded newer image") {
		t.Errorf("pull after login:\n%s", out)
	}
	if out := e.tentOK(t, "logout", reg.addr); !strings.Contains(out, "Removing login credentials for "+reg.addr) {
		t.Errorf("logout: %s", out)
	}
	e.tentOK(t, "rmi", private)
	if out, errOut, code := e.tent(nil, "pull", private); code == 0 || !strings.Contains(out+errOut, "pull access denied") {
		t.Errorf("pull after logout: exit %d: %s%s", code, out, errOut)
	}
}
