package throttle_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlitetest"
	"github.com/gatehouse-idp/gatehouse/internal/throttle"
)

// clock is a fake clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLimiter(t *testing.T, store storage.LoginThrottleStore, p throttle.Policy) (*throttle.Limiter, *clock) {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatalf("policy: %v", err)
	}
	clk := &clock{t: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)}
	return throttle.New(store, p, throttle.Options{Now: clk.Now}), clk
}

// attempt runs one attempt and, when it is let in, settles it as a
// failure (nothing to do) or a success.
func attempt(t *testing.T, l *throttle.Limiter, email, ip string, success bool) throttle.Decision {
	t.Helper()
	d, err := l.Attempt(t.Context(), email, ip)
	if err != nil {
		t.Fatalf("Attempt: %v", err)
	}
	if d.Allowed && success {
		if err := l.Success(t.Context(), email, ip); err != nil {
			t.Fatalf("Success: %v", err)
		}
	}
	if !d.Allowed && (d.RetryAfter < time.Second || d.RetryAfter%time.Second != 0) {
		t.Errorf("refused with RetryAfter %v, want whole seconds, at least 1", d.RetryAfter)
	}
	return d
}

// step is one attempt in a scripted sequence: wait, then try.
type step struct {
	wait    time.Duration
	email   string // default ada@example.com
	ip      string // default 192.0.2.1
	success bool
	// want: 0 for let in; otherwise the RetryAfter of the refusal.
	want   time.Duration
	locked bool
	scope  string // of a refusal; default "account"
}

func fails(n int) []step {
	out := make([]step, n)
	return out
}

func TestPolicyDelaysAndLocks(t *testing.T) {
	accountOnly := throttle.DefaultPolicy()
	accountOnly.IP = throttle.Rule{}
	ipOnly := throttle.DefaultPolicy()
	ipOnly.Account = throttle.Rule{}
	ipOnly.IP = throttle.LimitRule(6) // delays from 3, lock at 6

	tests := []struct {
		name   string
		policy throttle.Policy
		steps  []step
	}{
		{
			name:   "five failures are free, then 1s 2s 4s 8s 16s, then a 15 minute lock",
			policy: accountOnly,
			steps: append(fails(5),
				step{want: time.Second},                               // 5 failures: wait 1s after the last
				step{wait: 999 * time.Millisecond, want: time.Second}, // still 1ms early: rounded up
				step{wait: time.Millisecond},                          // 6th failure
				step{want: 2 * time.Second},
				step{wait: 2 * time.Second},                    // 7th
				step{wait: 3 * time.Second, want: time.Second}, // 4s after the 7th
				step{wait: time.Second},                        // 8th
				step{wait: time.Second, want: 7 * time.Second},
				step{wait: 7 * time.Second}, // 9th
				step{want: 16 * time.Second},
				step{wait: 16 * time.Second}, // 10th: locks
				step{want: 15 * time.Minute, locked: true},
				step{wait: 15*time.Minute - time.Second, want: time.Second, locked: true},
				step{wait: time.Second}, // the lock is over, and so is the window: counted afresh
				step{}, step{}, step{}, step{},
				step{want: time.Second}, // 5 failures in the new window
			),
		},
		{
			name:   "an unknown email is throttled like an account",
			policy: accountOnly,
			steps: append(func() []step {
				s := fails(10)
				for i := range s {
					s[i].email = "nobody@example.com"
					s[i].wait = 30 * time.Second
				}
				return s
			}(), step{email: "nobody@example.com", want: 15 * time.Minute, locked: true},
				step{email: "NoBody@Example.com ", want: 15 * time.Minute, locked: true}, // normalized like sign-in
				step{email: "ada@example.com"}),                                          // another account is not affected
		},
		{
			name:   "a success clears the account's count",
			policy: accountOnly,
			steps: append(fails(5),
				step{wait: time.Second, success: true},
				step{}, step{}, step{}, step{}, step{}, // five free again
				step{want: time.Second}),
		},
		{
			name:   "a lock refuses even the right password, and refusals do not extend it",
			policy: accountOnly,
			steps: []step{
				{}, {}, {}, {}, {},
				{wait: time.Second}, {wait: 2 * time.Second}, {wait: 4 * time.Second}, {wait: 8 * time.Second}, {wait: 16 * time.Second},
				{wait: time.Minute, success: true, want: 14 * time.Minute, locked: true},
				{wait: 10 * time.Minute, want: 4 * time.Minute, locked: true},
				{wait: 4 * time.Minute, success: true},
				{}, // the success cleared the count
			},
		},
		{
			name:   "a count starts over a window after its first failure",
			policy: accountOnly,
			steps: []step{
				{}, {}, {}, {},
				{wait: 15*time.Minute - time.Second}, // 5th failure, in the window
				{want: time.Second},
				{wait: time.Second}, // window over: this is failure 1 of a new one
				{}, {}, {},
				{}, // 5th of the new window
				{want: time.Second},
			},
		},
		{
			name:   "per IP across many accounts",
			policy: ipOnly,
			steps: []step{
				{email: "a@example.com"}, {email: "b@example.com"}, {email: "c@example.com"},
				{email: "d@example.com", want: time.Second, scope: "ip"},
				{email: "d@example.com", ip: "192.0.2.2"}, // another address is not affected
				{wait: time.Second, email: "d@example.com"},
				{wait: 2 * time.Second, email: "e@example.com"},
				{wait: 4 * time.Second, email: "f@example.com"}, // 6th: locked
				{email: "g@example.com", want: 15 * time.Minute, locked: true, scope: "ip"},
			},
		},
		{
			name:   "IPv6 is counted per /64, mapped IPv4 as IPv4",
			policy: ipOnly,
			steps: []step{
				{ip: "2001:db8:1:2::1"}, {ip: "2001:db8:1:2:ffff::9"}, {ip: "2001:db8:1:2::abcd"},
				{ip: "2001:db8:1:2::77", want: time.Second, scope: "ip"},
				{ip: "2001:db8:1:3::1"}, // another /64
				{ip: "::ffff:192.0.2.9"}, {ip: "192.0.2.9"}, {ip: "::ffff:192.0.2.9"},
				{ip: "192.0.2.9", want: time.Second, scope: "ip"},
			},
		},
		{
			name:   "a success from an address takes its attempt back",
			policy: ipOnly,
			steps: []step{
				{email: "a@example.com"}, {email: "b@example.com"},
				{email: "c@example.com", success: true},
				{email: "c@example.com", success: true},
				{email: "d@example.com"}, // 3 failures now
				{email: "e@example.com", want: time.Second, scope: "ip"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clk := newLimiter(t, sqlitetest.NewStore(t), tt.policy)
			for i, s := range tt.steps {
				clk.Advance(s.wait)
				email, ip := s.email, s.ip
				if email == "" {
					email = "ada@example.com"
				}
				if ip == "" {
					ip = "192.0.2.1"
				}
				d := attempt(t, l, email, ip, s.success)
				if s.want == 0 {
					if !d.Allowed {
						t.Fatalf("step %d: refused (%+v), want let in", i, d)
					}
					continue
				}
				scope := s.scope
				if scope == "" {
					scope = "account"
				}
				if d.Allowed || d.RetryAfter != s.want || d.Locked != s.locked || d.Scope != scope {
					t.Fatalf("step %d: %+v, want refused for %v (locked %v, scope %s)", i, d, s.want, s.locked, scope)
				}
			}
		})
	}
}

func TestDelayIsCapped(t *testing.T) {
	p := throttle.Policy{IP: throttle.Rule{DelayAfter: 1}, BaseDelay: time.Second, MaxDelay: 5 * time.Second, Lockout: time.Minute}
	l, clk := newLimiter(t, sqlitetest.NewStore(t), p)
	// 1s, 2s, 4s, then 5s (not 8s, 16s, ...) however many failures.
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second} {
		if d := attempt(t, l, "a@example.com", "192.0.2.1", false); !d.Allowed {
			t.Fatalf("attempt %d refused: %+v", i, d)
		}
		if d := attempt(t, l, "a@example.com", "192.0.2.1", false); d.Allowed || d.RetryAfter != want {
			t.Fatalf("after failure %d: %+v, want refused for %v", i+1, d, want)
		}
		clk.Advance(want)
	}
}

// A burst of simultaneous attempts gets what the policy allows one after
// another, not one per request that passed a check before any failure was
// counted.
func TestBurstGetsNoMoreThanThePolicyAllows(t *testing.T) {
	stores := map[string]func(t *testing.T) storage.LoginThrottleStore{
		"sqlite":   func(t *testing.T) storage.LoginThrottleStore { return sqlitetest.NewStore(t) },
		"postgres": func(t *testing.T) storage.LoginThrottleStore { return pgtest.NewStore(t) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			p := throttle.DefaultPolicy()
			store := open(t)
			l, clk := newLimiter(t, store, p)
			const n = 40
			allowed := make([]bool, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					d, err := l.Attempt(t.Context(), "ada@example.com", "192.0.2.1")
					if err != nil {
						t.Errorf("Attempt: %v", err)
					}
					allowed[i] = d.Allowed
				})
			}
			close(start)
			wg.Wait()
			var got int
			for _, a := range allowed {
				if a {
					got++
				}
			}
			// At one instant: the five free attempts, then the 6th must
			// wait a second after the 5th.
			if got != p.Account.DelayAfter {
				t.Errorf("%d of %d simultaneous attempts let in, want %d", got, n, p.Account.DelayAfter)
			}
			// The refused ones were taken back: the count is of the
			// attempts made, so the next waits one second, not a lock.
			counts, err := store.GetLoginThrottles(t.Context(),
				[]string{throttle.AccountKey("ada@example.com"), throttle.IPKey("192.0.2.1")}, clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			if counts[0].Failures != got || counts[1].Failures != got {
				t.Errorf("after the burst: %d account and %d IP failures counted, want %d", counts[0].Failures, counts[1].Failures, got)
			}
			clk.Advance(time.Second)
			if d := attempt(t, l, "ada@example.com", "192.0.2.1", false); !d.Allowed {
				t.Errorf("a second after the burst: %+v, want let in", d)
			}
		})
	}
}

func TestDisabledPolicyTouchesNothing(t *testing.T) {
	store := sqlitetest.NewStore(t)
	l, _ := newLimiter(t, store, throttle.Policy{})
	for range 50 {
		if d := attempt(t, l, "ada@example.com", "192.0.2.1", false); !d.Allowed {
			t.Fatalf("disabled policy refused: %+v", d)
		}
	}
	got, err := store.GetLoginThrottles(t.Context(), []string{throttle.AccountKey("ada@example.com"), throttle.IPKey("192.0.2.1")}, time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Failures != 0 || got[1].Failures != 0 {
		t.Errorf("disabled policy counted failures: %+v", got)
	}
}

func TestUnlockAndAbandon(t *testing.T) {
	p := throttle.DefaultPolicy()
	p.IP = throttle.Rule{}
	store := sqlitetest.NewStore(t)
	l, clk := newLimiter(t, store, p)
	ctx := t.Context()
	for range 10 {
		clk.Advance(p.MaxDelay)
		if d := attempt(t, l, "ada@example.com", "192.0.2.1", false); !d.Allowed {
			t.Fatalf("refused %+v after waiting the longest delay", d)
		}
	}
	if d := attempt(t, l, "ada@example.com", "192.0.2.1", false); !d.Locked {
		t.Fatalf("after 10 failures: %+v, want locked", d)
	}
	if err := throttle.Unlock(ctx, store, " ADA@example.com"); err != nil {
		t.Fatal(err)
	}
	// Abandoned attempts (server errors) do not count.
	for range 10 {
		if d := attempt(t, l, "ada@example.com", "192.0.2.1", false); !d.Allowed {
			t.Fatalf("after unlock: %+v, want let in", d)
		}
		if err := l.Abandon(ctx, "ada@example.com", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKeys(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"account is a hash of the normalized email", throttle.AccountKey(" Ada@Example.COM "), throttle.AccountKey("ada@example.com")},
		{"ipv4", throttle.IPKey("192.0.2.1"), "ip:192.0.2.1"},
		{"mapped ipv4", throttle.IPKey("::ffff:192.0.2.1"), "ip:192.0.2.1"},
		{"ipv6 /64", throttle.IPKey("2001:db8::1:2:3:4"), "ip:2001:db8::/64"},
		{"ipv6 zone dropped", throttle.IPKey("fe80::1%eth0"), "ip:fe80::/64"},
		{"not an address", throttle.IPKey("@pipe"), "ip:@pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	k := throttle.AccountKey("ada@example.com")
	if !strings.HasPrefix(k, "account:") || strings.Contains(k, "ada") || len(k) != len("account:")+64 {
		t.Errorf("AccountKey = %q, want account: and a hex SHA-256, without the email", k)
	}
	if throttle.AccountKey("ada@example.com") == throttle.AccountKey("bob@example.com") {
		t.Error("two emails share a key")
	}
}

func TestPolicyValidate(t *testing.T) {
	valid := throttle.DefaultPolicy()
	tests := []struct {
		name   string
		modify func(*throttle.Policy)
		ok     bool
	}{
		{"default", func(*throttle.Policy) {}, true},
		{"all off needs no delays", func(p *throttle.Policy) { *p = throttle.Policy{} }, true},
		{"negative threshold", func(p *throttle.Policy) { p.IP.LockAfter = -1 }, false},
		{"no base delay", func(p *throttle.Policy) { p.BaseDelay = 0 }, false},
		{"max below base", func(p *throttle.Policy) { p.MaxDelay = p.BaseDelay / 2 }, false},
		{"lockout shorter than the longest delay", func(p *throttle.Policy) { p.Lockout = p.MaxDelay - time.Second }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid
			tt.modify(&p)
			if err := p.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
	if r := throttle.LimitRule(0); r.Enabled() {
		t.Errorf("LimitRule(0) = %+v, want off", r)
	}
	if r := throttle.LimitRule(1); r.LockAfter != 1 || r.DelayAfter != 1 {
		t.Errorf("LimitRule(1) = %+v, want lock at 1", r)
	}
}
