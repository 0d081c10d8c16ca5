package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestParseKEK(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	k, err := ParseKEK(good)
	if err != nil {
		t.Fatalf("ParseKEK(valid): %v", err)
	}
	if k.Encode() != good {
		t.Fatalf("Encode() = %q, want %q", k.Encode(), good)
	}
	if k2, err := ParseKEK("  " + good + "\n"); err != nil || k2 != k {
		t.Fatalf("ParseKEK with surrounding white space: %v", err)
	}

	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "empty"},
		{"blank", " \n", "empty"},
		{"not base64", "this is not base64 at all!!", "not valid standard base64"},
		{"url alphabet", base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), "not valid standard base64"},
		{"missing padding", strings.TrimRight(good, "="), "not valid standard base64"},
		{"too short", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 16)), "decodes to 16 bytes, want exactly 32"},
		{"too long", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 33)), "decodes to 33 bytes, want exactly 32"},
		{"all zero", base64.StdEncoding.EncodeToString(make([]byte, 32)), "all zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKEK(tt.in)
			if err == nil {
				t.Fatal("ParseKEK succeeded, want error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if s := strings.TrimSpace(tt.in); s != "" && strings.Contains(err.Error(), s) {
				t.Errorf("error %q echoes the input", err)
			}
		})
	}
}

func TestGenerateKEK(t *testing.T) {
	k, err := GenerateKEK(bytes.NewReader(bytes.Repeat([]byte{9}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)); k.Encode() != want {
		t.Errorf("Encode() = %q, want %q", k.Encode(), want)
	}
	if _, err := GenerateKEK(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("GenerateKEK with a short reader succeeded")
	}
	if (KEK{}).IsZero() != true || k.IsZero() {
		t.Error("IsZero is wrong")
	}
}

func TestKEKNeverPrinted(t *testing.T) {
	k, err := GenerateKEK(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := k.Encode()
	rawHex := fmt.Sprintf("%x", k.b[:])
	rawDec := strings.Trim(fmt.Sprint(k.b[:]), "[]")
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		outputs = append(outputs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k), fmt.Sprintf(verb, struct{ K KEK }{k}))
	}
	outputs = append(outputs, k.String(), k.GoString(), fmt.Sprint(k), fmt.Sprintln(k))

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "kek", k, "ptr", &k, "nested", struct{ K KEK }{k})
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "kek", k, "ptr", &k, "nested", struct{ K KEK }{k})
	outputs = append(outputs, buf.String())
	js, err := json.Marshal(struct{ K KEK }{k})
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(js))

	for _, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(strings.ToLower(out), rawHex) || strings.Contains(out, rawDec) {
			t.Errorf("KEK leaked in %q", out)
		}
	}
	if got := fmt.Sprintf("%v", k); got != "[redacted]" {
		t.Errorf("%%v = %q, want [redacted]", got)
	}
	if got := fmt.Sprintf("%#v", k); got != "keys.KEK{[redacted]}" {
		t.Errorf("%%#v = %q", got)
	}
	if !strings.Contains(buf.String(), `"kek":"[redacted]"`) {
		t.Errorf("slog JSON output does not show the KEK as redacted: %s", buf.String())
	}
}

func TestLoadOrCreateKEKFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "gatehouse")
	path := filepath.Join(dir, "kek")

	k1, created, err := LoadOrCreateKEKFile(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("first call: created = false")
	}
	assertMode(t, path, 0o600)
	assertMode(t, dir, 0o700)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != k1.Encode()+"\n" {
		t.Errorf("file holds %q, want the base64 key and a newline", b)
	}

	k2, created, err := LoadOrCreateKEKFile(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if created || k2 != k1 {
		t.Errorf("second call: created = %v, same key = %v; want false, true", created, k2 == k1)
	}
	assertOnlyFile(t, dir, "kek")
}

func TestLoadOrCreateKEKFileConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kek")
	const n = 16
	var (
		wg      sync.WaitGroup
		keys    [n]KEK
		created [n]bool
		errs    [n]error
		start   = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			keys[i], created[i], errs[i] = LoadOrCreateKEKFile(path, rand.Reader)
		})
	}
	close(start)
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if keys[i] != keys[0] {
			t.Errorf("caller %d got a different key", i)
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d callers report creating the file, want 1", creators)
	}
	onDisk, err := readKEKFile(path)
	if err != nil || onDisk != keys[0] {
		t.Errorf("file does not hold the key everyone got (err %v)", err)
	}
	assertOnlyFile(t, dir, "kek")
}

func TestLoadOrCreateKEKFileErrors(t *testing.T) {
	dir := t.TempDir()

	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("hunter2-not-a-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadOrCreateKEKFile(bad, rand.Reader)
	if err == nil {
		t.Fatal("loaded a malformed key file")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error echoes the file contents: %v", err)
	}
	if !strings.Contains(err.Error(), bad) {
		t.Errorf("error does not name the file: %v", err)
	}

	_, _, err = LoadOrCreateKEKFile(filepath.Join(dir, "new"), io.LimitReader(rand.Reader, 3))
	if err == nil {
		t.Error("created a key from a short random source")
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed creation left a file behind (stat: %v)", err)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %o, want %o", path, got, want)
	}
}

func assertOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %v, want only %s (temporary files left behind?)", dir, names, name)
	}
}

func TestKEKDerive(t *testing.T) {
	a, err := GenerateKEK(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKEK(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseKEK(a.Encode())
	if err != nil {
		t.Fatal(err)
	}
	x := a.Derive("refresh-successor/v1")
	if len(x) != 32 {
		t.Fatalf("derived %d bytes, want 32", len(x))
	}
	if !bytes.Equal(x, again.Derive("refresh-successor/v1")) {
		t.Error("the same KEK derived different keys")
	}
	if bytes.Equal(x, a.Derive("other")) {
		t.Error("two purposes derived the same key")
	}
	if bytes.Equal(x, b.Derive("refresh-successor/v1")) {
		t.Error("two KEKs derived the same key")
	}
	if bytes.Contains(x, a.b[:8]) {
		t.Error("derived key contains KEK bytes")
	}
}
