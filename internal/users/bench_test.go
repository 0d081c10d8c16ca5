package users_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/users"
)

// BenchmarkAuthenticate compares a failed sign-in for an unknown email with
// one for a known email and a wrong password, under the default argon2id
// parameters. The two must cost the same, within noise, or the timing tells
// an attacker which emails have accounts. Run with
//
//	go test -run '^$' -bench Authenticate -count 5 ./internal/users
func BenchmarkAuthenticate(b *testing.B) {
	for _, backend := range backends {
		b.Run(backend.name, func(b *testing.B) { benchmarkAuthenticate(b, backend.open(b)) })
	}
}

func benchmarkAuthenticate(b *testing.B, store storage.Store) {
	svc := users.New(store, users.Options{}) // default parameters
	if _, err := svc.Create(b.Context(), users.CreateUser{Email: "ada@example.com", Password: "correct horse battery staple"}); err != nil {
		b.Fatal(err)
	}
	// Computes the dummy hash, so that neither case pays for it.
	if _, err := svc.Authenticate(b.Context(), "nobody@example.com", "x"); !errors.Is(err, users.ErrInvalidCredentials) {
		b.Fatal(err)
	}
	cases := []struct{ name, email, password string }{
		{"unknown_email", "nobody@example.com", "correct horse battery staple"},
		{"wrong_password", "ada@example.com", "correct horse battery stapler"},
	}
	authenticate := func(b *testing.B, email, password string) {
		if _, err := svc.Authenticate(b.Context(), email, password); !errors.Is(err, users.ErrInvalidCredentials) {
			b.Fatal(err)
		}
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				authenticate(b, bc.email, bc.password)
			}
		})
	}
	// On a busy machine, load drifts between the two runs above. This one
	// alternates the cases within one loop, and which goes first, so both
	// see the same load and garbage collections; it reports each one's mean
	// time and their ratio.
	b.Run("interleaved", func(b *testing.B) {
		var total [2]time.Duration
		for n := 0; b.Loop(); n++ {
			for j := range cases {
				i := (j + n) % 2 // alternate which goes first, too
				start := time.Now()
				authenticate(b, cases[i].email, cases[i].password)
				total[i] += time.Since(start)
			}
		}
		b.ReportMetric(float64(total[0].Nanoseconds())/float64(b.N), "ns/unknown_email")
		b.ReportMetric(float64(total[1].Nanoseconds())/float64(b.N), "ns/wrong_password")
		b.ReportMetric(float64(total[0])/float64(total[1]), "unknown/wrong")
	})
}
