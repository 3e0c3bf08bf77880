package registry

import (
	"encoding/base64"
	"testing"
)

func TestConfigHeader(t *testing.T) {
	h := base64.URLEncoding.EncodeToString([]byte(`{"https://index.docker.io/v1/":{"username":"hub"},"127.0.0.1:5000":{"username":"local"}}`))
	auths, err := DecodeConfigHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{"busybox": "hub", "127.0.0.1:5000/app:1": "local", "quay.io/x/y": ""} {
		if got := AuthFor(auths, ref).Username; got != want {
			t.Errorf("%s: credentials of %q, want %q", ref, got, want)
		}
	}
	if _, err := DecodeConfigHeader("%%%"); err == nil {
		t.Error("a bad header was taken")
	}
}
